use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::observe::SecurityMatch;

/// 2026-12-04 12:00:00 UTC, a whole minute.
const T0: u64 = 1_796_385_600;

/// A finished request, as the session hands it over: what analytics reads of it.
struct Sample {
    at: u64,
    zone: &'static str,
    status: u16,
    error_code: u16,
    security: Option<SecurityMatch>,
    country: String,
    path: &'static str,
}

fn sample(at: u64, zone: &'static str, status: u16) -> Sample {
    Sample {
        at,
        zone,
        status,
        error_code: 0,
        security: None,
        country: "FR".into(),
        path: "/",
    }
}

impl Analytics {
    fn add(&self, s: &Sample) {
        let info = RequestInfo {
            ray_id: "0123456789abcdef",
            zone: s.zone,
            started_at: UNIX_EPOCH + Duration::from_secs(s.at),
            client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            client_port: 40_000,
            host: s.zone,
            method: "GET",
            uri: s.path,
            path: s.path,
            protocol: "HTTP/1.1",
            scheme: "https",
            user_agent: b"curl/8",
            referer: b"",
            country: &s.country,
            asn: 0,
            security: s.security.as_ref(),
            sources: &[],
        };
        let outcome = LogRecord {
            edge_response_status: s.status,
            edge_response_bytes: 100,
            error_code: s.error_code,
            ..LogRecord::default()
        };
        self.record(&info, &outcome);
    }
}

fn query(zone: &str, since: u64, until: u64, step: u64, group_by: GroupBy) -> Query {
    Query {
        zone: zone.into(),
        since,
        until,
        step_minutes: step,
        group_by,
    }
}

fn series(r: &Report) -> Vec<(u64, Vec<(&str, u64)>)> {
    r.series
        .iter()
        .map(|(t, g)| (*t, g.iter().map(|(k, v)| (k.as_str(), *v)).collect()))
        .collect()
}

#[test]
fn requests_are_counted_per_minute_and_grouped() {
    let a = Analytics::default();
    a.add(&sample(T0 + 5, "shop", 200));
    a.add(&sample(T0 + 59, "shop", 200));
    a.add(&sample(T0 + 60, "shop", 404));
    a.add(&sample(T0 + 150, "shop", 200));
    a.add(&sample(T0 + 150, "blog", 200));
    let r = a.query(&query("shop", T0, T0 + 180, 1, GroupBy::Status));
    assert_eq!(
        r.totals,
        Counts {
            requests: 4,
            bytes: 400
        }
    );
    assert_eq!(
        series(&r),
        vec![
            (T0, vec![("200", 2)]),
            (T0 + 60, vec![("404", 1)]),
            (T0 + 120, vec![("200", 1)]),
        ]
    );
    // Two-minute buckets start at even minutes; a span that starts mid-way counts whole
    // minutes.
    let r = a.query(&query("shop", T0 + 90, T0 + 240, 2, GroupBy::Status));
    assert_eq!(
        series(&r),
        vec![(T0, vec![("404", 1)]), (T0 + 120, vec![("200", 1)])]
    );
    let r = a.query(&query("blog", T0, T0 + 180, 1, GroupBy::Country));
    assert_eq!(r.totals.requests, 1);
    assert_eq!(series(&r)[2], (T0 + 120, vec![("FR", 1)]));
}

#[test]
fn every_workers_open_minute_and_the_history_are_read() {
    let a = Analytics::default();
    std::thread::scope(|s| {
        for w in 0..4 {
            let a = &a;
            s.spawn(move || {
                crate::worker::set_worker_index(w);
                for i in 0..100 {
                    a.add(&sample(T0 + i % 120, "shop", 200 + w as u16));
                }
            });
        }
    });
    let r = a.query(&query("shop", T0, T0 + 120, 1, GroupBy::Status));
    assert_eq!(r.totals.requests, 400);
    let per_status: u64 = r.series.iter().flat_map(|(_, g)| g.values()).sum();
    assert_eq!(per_status, 400);
}

#[test]
fn security_events_are_kept_newest_first_with_their_fields() {
    let a = Analytics::default();
    for i in 0..3 {
        let mut s = sample(T0 + i * 70, "shop", 403);
        s.security = Some(SecurityMatch {
            action: "block",
            rule_id: "no-admin".into(),
            description: String::new(),
            source: "firewallCustom",
        });
        s.error_code = 1020;
        s.path = "/admin";
        a.add(&s);
    }
    a.add(&sample(T0 + 200, "shop", 200));
    let r = a.query(&query("shop", T0, T0 + 300, 1, GroupBy::Source));
    let ats: Vec<u64> = r.events.iter().map(|e| e.at).collect();
    assert_eq!(ats, vec![T0 + 140, T0 + 70, T0]);
    assert_eq!(r.events[0].rule_id, "no-admin");
    assert_eq!(r.events[0].path, "/admin");
    let tops = r.tops.unwrap();
    assert_eq!(tops.rules.top()[0].value, "no-admin");
    assert_eq!(tops.rules.top()[0].count, 3);
    assert_eq!(tops.paths.top()[0].value, "/admin");
    let by_source: u64 = r
        .series
        .iter()
        .filter_map(|(_, g)| g.get("firewallCustom"))
        .sum();
    assert_eq!(by_source, 3);
}

#[test]
fn rows_beyond_the_bound_are_folded_and_totals_stay_exact() {
    let a = Analytics::default();
    let countries: Vec<String> = (0..ROWS_PER_ZONE_MINUTE + 500)
        .map(|i| format!("C{i}"))
        .collect();
    for c in &countries {
        let mut s = sample(T0, "shop", 200);
        s.country = c.clone();
        a.add(&s);
    }
    let r = a.query(&query("shop", T0, T0 + 60, 1, GroupBy::Country));
    assert_eq!(r.totals.requests, countries.len() as u64);
    let groups = &r.series[0].1;
    assert_eq!(groups.len(), ROWS_PER_ZONE_MINUTE + 1);
    assert_eq!(groups[""], 500);
}

#[test]
fn minutes_older_than_the_retention_are_dropped() {
    let a = Analytics::default();
    a.add(&sample(T0, "shop", 200));
    let later = T0 + AnalyticsConfig::default().retention.as_secs() + 120;
    a.add(&sample(later, "shop", 200));
    a.add(&sample(later + 60, "shop", 200)); // moves `later` into the history
    let r = a.query(&query("shop", T0, later + 120, 60 * 24, GroupBy::Status));
    assert_eq!(r.totals.requests, 2);
}

fn with_dir(dir: &std::path::Path) -> AnalyticsConfig {
    AnalyticsConfig {
        data_dir: Some(dir.to_path_buf()),
        ..AnalyticsConfig::default()
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rampart-analytics-{name}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The start of the last whole hour: the retention is counted from the clock, so the test's
/// times are recent ones, and a test's minutes fall in one hour (top lists are per hour).
fn recent_minute() -> u64 {
    unix_secs(SystemTime::now()) / 3600 * 3600 - 3600
}

#[test]
fn finished_minutes_tops_and_events_survive_a_restart() {
    let dir = temp_dir("restart");
    let t0 = recent_minute();
    {
        let (a, note) = Analytics::open(&with_dir(&dir)).unwrap();
        assert!(note.is_none());
        a.add(&sample(t0 + 1, "shop", 200));
        a.add(&sample(t0 + 2, "shop", 404));
        let mut blocked = sample(t0 + 61, "shop", 403);
        blocked.security = Some(SecurityMatch {
            action: "block",
            rule_id: "no-admin".into(),
            description: String::new(),
            source: "firewallCustom",
        });
        blocked.error_code = 1020;
        a.add(&blocked);
        // A later minute moves the earlier ones into the history, and to the database.
        a.add(&sample(t0 + 125, "shop", 200));
        // Shutdown: the minute still open is written too, and the writer finishes.
        a.close();
        a.add(&sample(t0 + 126, "shop", 200));
    }
    let (a, note) = Analytics::open(&with_dir(&dir)).unwrap();
    assert!(note.is_none());
    let r = a.query(&query("shop", t0, t0 + 120, 1, GroupBy::Status));
    assert_eq!(
        r.totals,
        Counts {
            requests: 3,
            bytes: 300
        }
    );
    assert_eq!(
        series(&r),
        vec![
            (t0, vec![("200", 1), ("404", 1)]),
            (t0 + 60, vec![("403", 1)])
        ]
    );
    let r = a.query(&query("shop", t0, t0 + 120, 1, GroupBy::Source));
    assert_eq!(r.series[1].1["firewallCustom"], 1);
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.events[0].rule_id, "no-admin");
    assert_eq!(r.events[0].source, "firewallCustom");
    let tops = r.tops.unwrap();
    assert_eq!(tops.rules.top()[0].value, "no-admin");
    // Top lists are per hour: the request of the minute after the span is in.
    assert_eq!(tops.paths.top()[0].count, 4);
    // The minute open at the shutdown is there; what came after the close is not.
    let r = a.query(&query("shop", t0 + 120, t0 + 180, 1, GroupBy::Status));
    assert_eq!(r.totals.requests, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unreadable_database_is_moved_aside_and_a_new_one_made() {
    let dir = temp_dir("corrupt");
    std::fs::write(dir.join("analytics.sqlite"), vec![0x5a; 8192]).unwrap();
    let (a, note) = Analytics::open(&with_dir(&dir)).unwrap();
    let note = note.expect("a note about the old file");
    assert!(
        note.contains("moved to") && note.contains("unreadable"),
        "{note}"
    );
    let aside: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("unreadable"))
        .collect();
    assert_eq!(aside.len(), 1, "the old file is kept");
    assert_eq!(std::fs::read(aside[0].path()).unwrap(), vec![0x5a; 8192]);
    let t0 = recent_minute();
    a.add(&sample(t0, "shop", 200));
    a.add(&sample(t0 + 60, "shop", 200));
    drop(a);
    let (a, note) = Analytics::open(&with_dir(&dir)).unwrap();
    assert!(note.is_none());
    assert_eq!(
        a.query(&query("shop", t0, t0 + 60, 1, GroupBy::Status))
            .totals
            .requests,
        1
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_data_dir_that_cannot_be_made_is_an_error_naming_it() {
    let file = temp_dir("notadir").join("file");
    std::fs::write(&file, "x").unwrap();
    let err = Analytics::open(&with_dir(&file.join("sub"))).err().unwrap();
    assert!(
        err.starts_with("analytics: ") && err.contains("file/sub"),
        "{err}"
    );
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[test]
fn minutes_past_the_retention_leave_the_database() {
    let dir = temp_dir("retention");
    let config = AnalyticsConfig {
        retention: Duration::from_secs(3600),
        ..with_dir(&dir)
    };
    let now = recent_minute();
    {
        let (a, _) = Analytics::open(&config).unwrap();
        // Two hours ago (over the retention), then now: the old minute is dropped from the
        // file when the new one is written.
        a.add(&sample(now - 7200, "shop", 200));
        a.add(&sample(now, "shop", 200));
        a.add(&sample(now + 60, "shop", 200));
    }
    let conn = rusqlite::Connection::open(dir.join("analytics.sqlite")).unwrap();
    let minutes: Vec<i64> = conn
        .prepare("SELECT DISTINCT minute FROM rollup ORDER BY minute")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|m| m.unwrap())
        .collect();
    assert_eq!(minutes, vec![(now / 60) as i64]);
    std::fs::remove_dir_all(&dir).unwrap();
}
