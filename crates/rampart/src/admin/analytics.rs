//! `GET /client/v4/zones/{zone}/analytics`: the zone's requests over time from the
//! per-minute rollups, split by one dimension, with its top lists and latest security events.
//!
//! Parameters, all optional: `since` and `until` (Unix seconds or RFC 3339, `until`
//! excluded; default the last hour up to now, or the last `span` (`6h`, `7d`, seconds) up to
//! `until`),  `step` (`1m`, `5m`, `1h`, … whole minutes; default `1m`) and `group_by` (`status`,
//! `code`, `source`, `country` or `cache`; default `status`). A span holds at most
//! [`MAX_BUCKETS`] steps.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::collections::BTreeMap;

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::{Object, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{Envelope, Failure, ZonePath, code, failure, no_zone, success};
use super::auth::Caller;
use crate::analytics::sketch::SpaceSaving;
use crate::analytics::{GroupBy, Query, Report};
use crate::config::api::Scope;
use crate::runtime::Runtime;
use crate::text::{query_value, rfc3339};

/// Most buckets one answer holds: seven days of minutes.
pub const MAX_BUCKETS: u64 = 7 * 24 * 60;

/// Security events one answer lists, newest first.
const EVENTS_SHOWN: usize = 100;

pub(super) fn routes() -> OpenApiRouter<Arc<Runtime>> {
    OpenApiRouter::new().routes(routes!(analytics))
}

/// The query parameters (read by [`parse`]; this describes them).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct Params {
    /// The span's start: Unix seconds or an RFC 3339 time (default: `span` before `until`).
    #[param(min_length = 1)]
    since: Option<String>,
    /// The span's end, excluded: Unix seconds or an RFC 3339 time (default: now).
    #[param(min_length = 1)]
    until: Option<String>,
    /// The span's length when `since` is left out: seconds, or `6h`, `7d` (default 1 h).
    #[param(min_length = 1)]
    span: Option<String>,
    /// The bucket: whole minutes such as `1m`, `5m`, `1h` (default `1m`); at most 10,080
    /// buckets in a span.
    #[param(min_length = 1)]
    step: Option<String>,
    /// What the series is split by (default `status`).
    #[param(schema_with = group_by_names)]
    group_by: Option<String>,
}

fn group_by_names() -> Object {
    super::schema::one_of(Type::String, GroupBy::NAMES.iter().map(|(n, _)| *n))
}

/// The zone's requests over a span.
#[derive(Serialize, ToSchema)]
struct AnalyticsReport {
    /// The span's start (RFC 3339).
    since: String,
    /// Its end, excluded.
    until: String,
    step_minutes: u64,
    group_by: String,
    totals: Totals,
    /// Every bucket the span touches, oldest first.
    series: Vec<Bucket>,
    /// Over the whole hours the span touches.
    top: TopLists,
    /// The latest security events in the span, newest first (at most 100).
    security_events: Vec<SecurityEvent>,
}

/// Requests and response bytes.
#[derive(Serialize, ToSchema)]
struct Totals {
    requests: u64,
    bytes: u64,
}

/// One bucket of the series.
#[derive(Serialize, ToSchema)]
struct Bucket {
    /// Its start (RFC 3339).
    time: String,
    /// Requests by group (a status, an edge error code, ...).
    requests: BTreeMap<String, u64>,
}

/// The most frequent values, from bounded sketches: `count` is an upper bound, of which at
/// most `error` may belong to other values.
#[derive(Serialize, ToSchema)]
struct TopLists {
    paths: Vec<TopItem>,
    client_ips: Vec<TopItem>,
    asns: Vec<TopItem>,
    user_agents: Vec<TopItem>,
    rule_ids: Vec<TopItem>,
}

/// A value of a top list.
#[derive(Serialize, ToSchema)]
struct TopItem {
    value: String,
    count: u64,
    error: u64,
}

/// A request a security feature acted on.
#[derive(Serialize, ToSchema)]
struct SecurityEvent {
    time: String,
    ray_id: String,
    /// What acted: `custom_rule`, `rate_limit`, `ip_access`, ...
    source: String,
    action: String,
    rule_id: String,
    status: u16,
    client_ip: String,
    country: String,
    method: String,
    path: String,
}

/// The zone's requests over time from the per-minute rollups, split by one dimension, with
/// its top lists and latest security events.
#[utoipa::path(get, path = "/zones/{zone}/analytics", tag = "analytics",
    operation_id = "zone_analytics", params(ZonePath, Params),
    responses(
        (status = 200, description = "The report.", body = Envelope<AnalyticsReport>),
        (status = 400, description = "A parameter that does not parse, or too many buckets \
            (code 1004).", body = Failure),
        (status = 404, description = "No such zone (code 7003).", body = Failure),
    ))]
async fn analytics(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    Path(zone): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    if let Err(denied) = caller.allow(Scope::AnalyticsRead, Some(&zone)) {
        return denied.into_response();
    }
    if !rt.generation().config.zones.iter().any(|z| z.name == zone) {
        return no_zone(&zone);
    }
    let query = match parse(&zone, uri.query().unwrap_or(""), SystemTime::now()) {
        Ok(q) => q,
        Err(message) => return failure(StatusCode::BAD_REQUEST, code::INVALID, message),
    };
    success(report(&query, &rt.analytics.query(&query)))
}

/// The query a request's parameters ask for, at `now`; the message of a 400 otherwise.
fn parse(zone: &str, params: &str, now: SystemTime) -> Result<Query, String> {
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (mut since, mut until, mut step, mut group_by) = (None, None, 1, GroupBy::Status);
    let mut span = None;
    for pair in params.split('&').filter(|p| !p.is_empty()) {
        let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let value = query_value(raw).ok_or_else(|| format!("`{name}` is not decodable"))?;
        match name {
            "since" => since = Some(time(name, &value)?),
            "span" => span = Some(seconds(&value)?),
            "until" => until = Some(time(name, &value)?),
            "step" => step = minutes(&value)?,
            "group_by" => {
                group_by = GroupBy::parse(&value).ok_or_else(|| {
                    format!("group_by `{value}` is not one of status, code, source, country, cache")
                })?
            }
            _ => {}
        }
    }
    // By default up to now, this second included.
    let until = until.unwrap_or(now + 1);
    let since = since.unwrap_or(until.saturating_sub(span.unwrap_or(3600)));
    if since >= until {
        return Err("since must be before until".into());
    }
    if (until - since).div_ceil(60).div_ceil(step) > MAX_BUCKETS {
        return Err(format!(
            "{} steps of {step} min from since to until; at most {MAX_BUCKETS}: use a longer step",
            (until - since).div_ceil(60).div_ceil(step)
        ));
    }
    Ok(Query {
        zone: zone.into(),
        since,
        until,
        step_minutes: step,
        group_by,
    })
}

/// The last second of the year 9999: times are written with four-digit years.
const LATEST: u64 = 253_402_300_799;

/// Unix seconds, or an RFC 3339 time, up to the year 9999.
fn time(name: &str, value: &str) -> Result<u64, String> {
    let secs = match value.parse::<u64>() {
        Ok(secs) => Some(secs),
        Err(_) => humantime::parse_rfc3339_weak(value)
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
    };
    match secs {
        Some(s) if s <= LATEST => Ok(s),
        Some(_) => Err(format!("{name} `{value}` is after the year 9999")),
        None => Err(format!(
            "{name} `{value}` is neither Unix seconds nor an RFC 3339 time"
        )),
    }
}

/// A span such as `3600`, `6h` or `7d`, in seconds.
fn seconds(value: &str) -> Result<u64, String> {
    value
        .parse::<u64>()
        .ok()
        .or_else(|| humantime::parse_duration(value).ok().map(|d| d.as_secs()))
        .filter(|&s| s > 0 && s <= LATEST)
        .ok_or_else(|| format!("span `{value}` is not a duration such as 3600, 6h or 7d"))
}

/// A step such as `5m` or `1h`, in whole minutes.
fn minutes(value: &str) -> Result<u64, String> {
    let bad = || format!("step `{value}` is not a whole number of minutes, such as 1m, 5m or 1h");
    let d = humantime::parse_duration(value).map_err(|_| bad())?;
    if d.is_zero() || d.as_secs() % 60 != 0 || d.subsec_nanos() != 0 {
        return Err(bad());
    }
    Ok(d.as_secs() / 60)
}

fn at(secs: u64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_secs(secs))
}

fn top(s: Option<&SpaceSaving>) -> Vec<TopItem> {
    s.map_or_else(Vec::new, |s| {
        s.top()
            .iter()
            .map(|c| TopItem {
                value: c.value.clone(),
                count: c.count,
                error: c.error,
            })
            .collect()
    })
}

fn report(q: &Query, r: &Report) -> AnalyticsReport {
    let tops = r.tops.as_ref();
    AnalyticsReport {
        since: at(q.since),
        until: at(q.until),
        step_minutes: q.step_minutes,
        group_by: q.group_by.name().into(),
        totals: Totals {
            requests: r.totals.requests,
            bytes: r.totals.bytes,
        },
        series: r
            .series
            .iter()
            .map(|(t, groups)| Bucket {
                time: at(*t),
                requests: groups.clone(),
            })
            .collect(),
        top: TopLists {
            paths: top(tops.map(|t| &t.paths)),
            client_ips: top(tops.map(|t| &t.ips)),
            asns: top(tops.map(|t| &t.asns)),
            user_agents: top(tops.map(|t| &t.user_agents)),
            rule_ids: top(tops.map(|t| &t.rules)),
        },
        security_events: r
            .events
            .iter()
            .take(EVENTS_SHOWN)
            .map(|e| SecurityEvent {
                time: at(e.at),
                ray_id: e.ray_id.clone(),
                source: e.source.into(),
                action: e.action.into(),
                rule_id: e.rule_id.clone(),
                status: e.status,
                client_ip: e.client_ip.to_string(),
                country: e.country.clone(),
                method: e.method.clone(),
                path: e.path.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_796_385_600;

    fn p(params: &str) -> Result<Query, String> {
        parse("shop", params, UNIX_EPOCH + Duration::from_secs(NOW))
    }

    #[test]
    fn defaults_are_the_last_hour_by_minute_and_status() {
        let q = p("").unwrap();
        assert_eq!(
            (q.since, q.until, q.step_minutes),
            (NOW + 1 - 3600, NOW + 1, 1)
        );
        assert_eq!(q.group_by, GroupBy::Status);
    }

    #[test]
    fn times_are_unix_seconds_or_rfc3339_and_steps_whole_minutes() {
        let q =
            p("since=2026-12-04T11%3A00%3A00Z&until=1796385600&step=5m&group_by=country").unwrap();
        assert_eq!((q.since, q.until, q.step_minutes), (NOW - 3600, NOW, 5));
        assert_eq!(q.group_by, GroupBy::Country);
        assert_eq!(p("step=1h").unwrap().step_minutes, 60);
        for (bad, says) in [
            ("step=90s", "whole number of minutes"),
            ("step=0m", "whole number of minutes"),
            ("group_by=path", "not one of"),
            ("since=yesterday", "neither Unix seconds"),
            ("since=100&until=100", "before until"),
            ("since=0&until=1796385600", "at most 10080"),
            ("since=%zz", "not decodable"),
            (
                "since=9223372036854775808&until=9223372036854775809",
                "after the year 9999",
            ),
            ("span=0", "not a duration"),
        ] {
            let e = p(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let q = p("span=6h").unwrap();
        assert_eq!((q.since, q.until), (NOW + 1 - 6 * 3600, NOW + 1));
        // Seven days of minutes is the most one answer holds.
        assert!(p(&format!("since={}&until={NOW}", NOW - 7 * 86_400)).is_ok());
    }
}
