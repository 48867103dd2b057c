//! `analytics.sqlite` under `[analytics] data_dir`: the finished minutes, the hours' top lists
//! and the security events, written by a thread of their own and read back at start-up.
//!
//! The request path never waits for the disk: a finished minute goes to the writer over a
//! bounded channel, and one that does not fit is dropped from the file (it stays in memory)
//! and counted. A database that cannot be read at start-up (corrupt, another program's) is
//! moved aside, never deleted, and a new one is made. Rows older than the retention are
//! deleted as minutes are written; past `max_size` the oldest hours go first.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, params};

use super::sketch::Counted;
use super::{Counts, Event, History, RowKey, Tops};
use crate::cache::CacheStatus;

/// Finished minutes waiting for the writer; more are dropped from the file.
const QUEUE: usize = 256;

/// One finished minute of one worker, and the top lists of the hour it belongs to.
pub(super) struct Written {
    pub minute: u64,
    pub rows: Vec<(Box<str>, RowKey, Counts)>,
    pub tops: Vec<(Box<str>, Tops)>,
    pub events: Vec<(Box<str>, Event)>,
}

/// The writer's end, held by the analytics. Closing it (or dropping it) lets the writer
/// write what is queued, and waits for it.
pub(super) struct Persist {
    tx: Mutex<Option<SyncSender<Written>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Minutes not written: the writer was behind, or failed to write them.
    pub dropped: Arc<AtomicU64>,
}

impl Persist {
    /// Hands a finished minute to the writer, never waiting.
    pub fn write(&self, w: Written) {
        let sent = match &*super::lock(&self.tx) {
            Some(tx) => tx.try_send(w).is_ok(),
            None => false,
        };
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits for the writer to write what is queued; later minutes are not written.
    pub fn close(&self) {
        drop(super::lock(&self.tx).take());
        if let Some(writer) = super::lock(&self.writer).take() {
            let _ = writer.join();
        }
    }
}

impl Drop for Persist {
    fn drop(&mut self) {
        self.close();
    }
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS rollup (
    minute INTEGER NOT NULL, zone TEXT NOT NULL, status INTEGER NOT NULL, code INTEGER NOT NULL,
    source TEXT NOT NULL, action TEXT NOT NULL, country TEXT NOT NULL, cache TEXT NOT NULL,
    requests INTEGER NOT NULL, bytes INTEGER NOT NULL,
    PRIMARY KEY (minute, zone, status, code, source, action, country, cache)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS top (
    hour INTEGER NOT NULL, zone TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
    count INTEGER NOT NULL, error INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS top_hour ON top (hour, zone);
CREATE TABLE IF NOT EXISTS event (
    at INTEGER NOT NULL, zone TEXT NOT NULL, ray_id TEXT NOT NULL, source TEXT NOT NULL,
    action TEXT NOT NULL, rule_id TEXT NOT NULL, status INTEGER NOT NULL,
    client_ip TEXT NOT NULL, country TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS event_at ON event (at);
";

/// Opens (or makes) `dir/analytics.sqlite`, reads what it holds since `oldest_minute` into a
/// history, and starts the writer. A file that cannot be read is moved aside (said in the
/// returned note) and a new one made; an error only when no database can be made at all.
pub(super) fn open(
    dir: &Path,
    oldest_minute: u64,
    retention_minutes: u64,
    max_size: u64,
) -> Result<(History, Persist, Option<String>), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("analytics.sqlite");
    let (conn, history, note) = match open_and_load(&path, oldest_minute) {
        Ok((conn, history)) => (conn, history, None),
        // Busy, locked, no permission, …: the file may be fine; say so and stop.
        Err(e) if !unreadable(&e) => return Err(format!("{}: {e}", path.display())),
        Err(e) => {
            let aside = aside_name(&path);
            std::fs::rename(&path, &aside)
                .map_err(|r| format!("{}: {e}; moving it aside failed too: {r}", path.display()))?;
            // Its journal goes with it (it may hold committed minutes), under the same name.
            for suffix in ["-wal", "-shm"] {
                let journal = PathBuf::from(format!("{}{suffix}", path.display()));
                if journal.exists() {
                    let _ = std::fs::rename(&journal, format!("{}{suffix}", aside.display()));
                }
            }
            let (conn, history) = open_and_load(&path, oldest_minute)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let note = format!(
                "{}: {e}; moved to {} and started afresh",
                path.display(),
                aside.display()
            );
            (conn, history, Some(note))
        }
    };
    let (tx, rx) = sync_channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let failed = dropped.clone();
    let writer = std::thread::Builder::new()
        .name("rampart-analytics".into())
        .spawn(move || writer(conn, rx, retention_minutes, max_size, &failed))
        .map_err(|e| e.to_string())?;
    Ok((
        history,
        Persist {
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            dropped,
        },
        note,
    ))
}

/// Whether `e` says the file is not a database, or a damaged one (not busy, locked or
/// refused: those leave the file alone).
fn unreadable(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

fn aside_name(path: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    path.with_extension(format!("sqlite.unreadable-{secs}"))
}

fn open_and_load(path: &Path, oldest_minute: u64) -> rusqlite::Result<(Connection, History)> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    let mut history = History::default();
    let mut rows = conn.prepare(
        "SELECT minute, zone, status, code, source, action, country, cache, requests, bytes
         FROM rollup WHERE minute >= ?1",
    )?;
    let mut it = rows.query(params![oldest_minute as i64])?;
    while let Some(r) = it.next()? {
        let minute: i64 = r.get(0)?;
        let zone: String = r.get(1)?;
        let key = RowKey {
            status: r.get(2)?,
            code: r.get(3)?,
            source: known(&r.get::<_, String>(4)?, SOURCES),
            action: known(&r.get::<_, String>(5)?, ACTIONS),
            country: r.get::<_, String>(6)?.into(),
            cache: known_cache(&r.get::<_, String>(7)?),
        };
        let counts = Counts {
            requests: r.get::<_, i64>(8)? as u64,
            bytes: r.get::<_, i64>(9)? as u64,
        };
        let rows = history
            .minutes
            .entry(minute as u64)
            .or_default()
            .entry(zone.into())
            .or_default();
        super::count_row(rows, key, counts);
    }
    drop(it);
    drop(rows);
    for zones in history.minutes.values_mut() {
        for kept in zones.values_mut() {
            kept.0.shrink_to_fit();
        }
    }
    let mut tops =
        conn.prepare("SELECT hour, zone, kind, value, count, error FROM top WHERE hour >= ?1")?;
    let mut it = tops.query(params![(oldest_minute / 60) as i64])?;
    while let Some(r) = it.next()? {
        let hour: i64 = r.get(0)?;
        let zone: String = r.get(1)?;
        let kind: String = r.get(2)?;
        let t = history
            .hours
            .entry(hour as u64)
            .or_default()
            .entry(zone.into())
            .or_default();
        let sketch = match kind.as_str() {
            "path" => &mut t.paths,
            "ip" => &mut t.ips,
            "asn" => &mut t.asns,
            "user_agent" => &mut t.user_agents,
            "rule" => &mut t.rules,
            _ => continue,
        };
        sketch.restore(Counted {
            value: r.get(3)?,
            count: r.get::<_, i64>(4)? as u64,
            error: r.get::<_, i64>(5)? as u64,
        });
    }
    drop(it);
    drop(tops);
    let mut events = conn.prepare(
        "SELECT at, zone, ray_id, source, action, rule_id, status, client_ip, country, method,
         path FROM (SELECT *, row_number() OVER (PARTITION BY zone ORDER BY at DESC) AS n
         FROM event WHERE at >= ?1) WHERE n <= 1000 ORDER BY at",
    )?;
    let mut it = events.query(params![(oldest_minute * 60) as i64])?;
    while let Some(r) = it.next()? {
        let zone: String = r.get(1)?;
        let event = Event {
            at: r.get::<_, i64>(0)? as u64,
            ray_id: r.get(2)?,
            source: known(&r.get::<_, String>(3)?, SOURCES),
            action: known(&r.get::<_, String>(4)?, ACTIONS),
            rule_id: r.get(5)?,
            status: r.get(6)?,
            client_ip: r
                .get::<_, String>(7)?
                .parse()
                .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0])),
            country: r.get(8)?,
            method: r.get(9)?,
            path: r.get(10)?,
        };
        history.push_event(zone.into(), event);
    }
    drop(it);
    drop(events);
    Ok((conn, history))
}

/// The security sources and actions requests are counted by, like the cache statuses: read
/// back as the same static names (anything else reads as `other`).
const SOURCES: &[&str] = &[
    "ip",
    "ipRange",
    "asn",
    "country",
    "firewallCustom",
    "rateLimit",
];
const ACTIONS: &[&str] = &[
    "block",
    "log",
    "skip",
    "allow",
    "challenge",
    "managed_challenge",
];
/// A cache status as the log names it ([`CacheStatus::log_name`]).
fn known_cache(s: &str) -> &'static str {
    let names: Vec<&'static str> = CacheStatus::ALL.iter().map(|c| c.log_name()).collect();
    known(s, &names)
}

fn known(s: &str, names: &[&'static str]) -> &'static str {
    match names.iter().find(|n| **n == s) {
        Some(n) => n,
        None if s.is_empty() => "",
        None => "other",
    }
}

fn writer(
    mut conn: Connection,
    rx: Receiver<Written>,
    retention_minutes: u64,
    max_size: u64,
    failed: &AtomicU64,
) {
    let mut failing = false;
    while let Ok(w) = rx.recv() {
        let result = write(&mut conn, &w, retention_minutes, max_size);
        if result.is_err() {
            failed.fetch_add(1, Ordering::Relaxed);
        }
        match result {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("analytics: writing to the database again");
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::error!(
                    "analytics: cannot write minute {} to the database: {e}; kept in memory",
                    w.minute
                );
            }
            Err(_) => {}
        }
    }
}

fn write(
    conn: &mut Connection,
    w: &Written,
    retention_minutes: u64,
    max_size: u64,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO rollup VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT DO UPDATE SET requests = requests + excluded.requests,
             bytes = bytes + excluded.bytes",
        )?;
        for (zone, k, c) in &w.rows {
            upsert.execute(params![
                w.minute as i64,
                &**zone,
                k.status,
                k.code,
                k.source,
                k.action,
                &*k.country,
                k.cache,
                c.requests as i64,
                c.bytes as i64,
            ])?;
        }
        let hour = (w.minute / 60) as i64;
        let mut clear = tx.prepare_cached("DELETE FROM top WHERE hour = ?1 AND zone = ?2")?;
        let mut top = tx.prepare_cached("INSERT INTO top VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        for (zone, t) in &w.tops {
            clear.execute(params![hour, &**zone])?;
            for (kind, sketch) in [
                ("path", &t.paths),
                ("ip", &t.ips),
                ("asn", &t.asns),
                ("user_agent", &t.user_agents),
                ("rule", &t.rules),
            ] {
                for c in sketch.top() {
                    top.execute(params![
                        hour,
                        &**zone,
                        kind,
                        c.value,
                        c.count as i64,
                        c.error as i64
                    ])?;
                }
            }
        }
        let mut event = tx.prepare_cached(
            "INSERT INTO event VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for (zone, e) in &w.events {
            event.execute(params![
                e.at as i64,
                &**zone,
                e.ray_id,
                e.source,
                e.action,
                e.rule_id,
                e.status,
                e.client_ip.to_string(),
                e.country,
                e.method,
                e.path,
            ])?;
        }
        let mut keep = tx.prepare_cached(
            "DELETE FROM event WHERE zone = ?1 AND rowid NOT IN
             (SELECT rowid FROM event WHERE zone = ?1 ORDER BY at DESC LIMIT 1000)",
        )?;
        let mut zones: Vec<&str> = w.events.iter().map(|(z, _)| &**z).collect();
        zones.dedup();
        for zone in zones {
            keep.execute(params![zone])?;
        }
        let oldest = w.minute.saturating_sub(retention_minutes) as i64;
        tx.execute("DELETE FROM rollup WHERE minute < ?1", params![oldest])?;
        tx.execute("DELETE FROM top WHERE hour < ?1", params![oldest / 60])?;
        tx.execute("DELETE FROM event WHERE at < ?1", params![oldest * 60])?;
    }
    tx.commit()?;
    trim_to(conn, max_size)
}

/// Deletes the oldest hours while the database is over `max_size`.
fn trim_to(conn: &Connection, max_size: u64) -> rusqlite::Result<()> {
    for _ in 0..64 {
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        if ((pages - free) * size) as u64 <= max_size {
            return Ok(());
        }
        let Some(first): Option<i64> =
            conn.query_row("SELECT MIN(minute) FROM rollup", [], |r| r.get(0))?
        else {
            return Ok(());
        };
        let end = first / 60 * 60 + 60;
        conn.execute("DELETE FROM rollup WHERE minute < ?1", params![end])?;
        conn.execute("DELETE FROM top WHERE hour < ?1", params![end / 60])?;
        conn.execute("DELETE FROM event WHERE at < ?1", params![end * 60])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_are_the_static_names_or_other() {
        for c in CacheStatus::ALL {
            assert_eq!(known_cache(c.log_name()), c.log_name());
        }
        assert_eq!(known_cache(""), "");
        assert_eq!(known_cache("HIT"), "other");
        assert_eq!(known("rateLimit", SOURCES), "rateLimit");
        assert_eq!(known("firewallManaged", SOURCES), "other");
    }
}
