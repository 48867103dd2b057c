//! Analytics: every request counted into per-minute rollups, with top lists and a sample of
//! security events, for the management API (`GET /client/v4/zones/{zone}/analytics`).
//!
//! # What is kept
//!
//! - **Rollups**, per minute: requests and bytes by zone × status × error code (1xxx) ×
//!   security source and action × country × cache status. A zone keeps at most
//!   [`ROWS_PER_ZONE_MINUTE`] distinct rows a minute; further combinations count in one row
//!   with the country and cache status left out, so totals stay exact.
//! - **Top lists**, per hour: paths, client IPs, ASNs, user agents and rule ids, each a
//!   space-saving summary of [`TOP_CAPACITY`] counters ([`sketch`]).
//! - **Security events**: the last [`EVENTS_PER_ZONE`] requests a security feature acted on,
//!   per zone, with their log fields.
//!
//! Everything older than the retention (`[analytics] retention`, 7 days) is dropped. It is
//! kept in memory, bounded as above; with `[analytics] data_dir` it is also written to
//! `analytics.sqlite` there by a thread of its own and read back at start-up ([`persist`]).
//!
//! # Cost on the request path
//!
//! A request updates the open minute of its worker's own slot (an uncontended lock, one hash
//! map update, five summary updates); the first request of a new minute on that worker moves
//! the finished minute into the shared history. No thread, no channel: a query reads the
//! history and every worker's open minute.

mod persist;
pub mod sketch;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sketch::SpaceSaving;

use crate::config::analytics::AnalyticsConfig;
use crate::observe::{LogRecord, RequestInfo};
use crate::worker::WorkerSlot;

/// Distinct rollup rows a zone keeps per minute before folding the rest.
pub const ROWS_PER_ZONE_MINUTE: usize = 200;
/// Counters in each top list (per zone and hour).
pub const TOP_CAPACITY: usize = 64;
/// Security events kept per zone.
pub const EVENTS_PER_ZONE: usize = 1_000;
/// Security events a worker keeps of one minute (of every zone): a flood of matched requests
/// is counted in the rollups, and its first events stand for it.
pub const EVENTS_PER_MINUTE: usize = 200;
/// Per-worker slots (more workers share them).
const SLOTS: usize = 64;

/// What a rollup row counts by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    /// Status.
    pub status: u16,
    /// Edge error code (0: none).
    pub code: u16,
    /// Security source ("": none).
    pub source: &'static str,
    /// Security action ("": none).
    pub action: &'static str,
    /// Country ("": unknown or folded).
    pub country: Box<str>,
    /// Cache status ("": none or folded).
    pub cache: &'static str,
}

/// Requests and bytes of a row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests.
    pub requests: u64,
    /// EdgeResponseBytes, summed.
    pub bytes: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.requests += other.requests;
        self.bytes += other.bytes;
    }
}

/// A zone's rows of one minute (at most [`ROWS_PER_ZONE_MINUTE`]: a fast hash is safe).
type Rows = HashMap<RowKey, Counts, foldhash::fast::RandomState>;

/// By zone (the configured zones only).
type ByZone<T> = HashMap<Box<str>, T, foldhash::fast::RandomState>;

/// The five top lists of a zone.
#[derive(Debug, Clone)]
pub struct Tops {
    /// ClientRequestPath.
    pub paths: SpaceSaving,
    /// ClientIP.
    pub ips: SpaceSaving,
    /// ClientASN.
    pub asns: SpaceSaving,
    /// ClientRequestUserAgent.
    pub user_agents: SpaceSaving,
    /// SecurityRuleID of the deciding match.
    pub rules: SpaceSaving,
}

impl Default for Tops {
    fn default() -> Self {
        Tops {
            paths: SpaceSaving::new(TOP_CAPACITY),
            ips: SpaceSaving::new(TOP_CAPACITY),
            asns: SpaceSaving::new(TOP_CAPACITY),
            user_agents: SpaceSaving::new(TOP_CAPACITY),
            rules: SpaceSaving::new(TOP_CAPACITY),
        }
    }
}

impl Tops {
    /// Counts a request; `scratch` holds the address and ASN as text (no allocation once it
    /// has grown).
    fn add(&mut self, r: &RequestInfo<'_>, scratch: &mut Vec<u8>) {
        self.paths.add(clipped(r.path), 1);
        scratch.clear();
        crate::text::write_ip(scratch, r.client_ip);
        self.ips.add(std::str::from_utf8(scratch).unwrap_or(""), 1);
        if r.asn != 0 {
            scratch.clear();
            crate::text::write_decimal(scratch, u64::from(r.asn));
            self.asns.add(std::str::from_utf8(scratch).unwrap_or(""), 1);
        }
        self.user_agents
            .add(clipped(&String::from_utf8_lossy(r.user_agent)), 1);
        if let Some(m) = r.security {
            self.rules.add(&m.rule_id, 1);
        }
    }

    fn merge(&mut self, other: &Tops) {
        self.paths.merge(&other.paths);
        self.ips.merge(&other.ips);
        self.asns.merge(&other.asns);
        self.user_agents.merge(&other.user_agents);
        self.rules.merge(&other.rules);
    }
}

/// Longest value a top list keeps (paths and user agents can be tens of KB): longer ones
/// are cut at a character boundary, so that 64 long values cannot take megabytes.
pub const TOP_VALUE_BYTES: usize = 256;

fn clipped(s: &str) -> &str {
    if s.len() <= TOP_VALUE_BYTES {
        return s;
    }
    let mut end = TOP_VALUE_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Counts `c` under `key` in a zone's minute, folding a new key into the row without
/// country and cache status once the zone has [`ROWS_PER_ZONE_MINUTE`] rows (the folded row
/// itself may be the one row past the bound).
fn count_row(rows: &mut impl RowSet, mut key: RowKey, c: Counts) {
    if rows.count() >= ROWS_PER_ZONE_MINUTE && !rows.holds(&key) {
        key.country = "".into();
        key.cache = "";
        if !rows.holds(&key) {
            // Every dimension but the status folded: the bound holds whatever comes.
            key.code = 0;
            key.source = "";
            key.action = "";
        }
    }
    rows.add(key, c);
}

/// A zone's rows of a finished minute: sorted by key in one vector, about half the memory
/// of a hash table (measured), and merged into by binary search (at most a few hundred).
#[derive(Debug, Default, Clone)]
struct Kept(Vec<(RowKey, Counts)>);

/// What [`count_row`] counts into: an open minute's table or a finished minute's vector.
trait RowSet {
    fn count(&self) -> usize;
    fn holds(&self, key: &RowKey) -> bool;
    fn add(&mut self, key: RowKey, c: Counts);
}

impl RowSet for Rows {
    fn count(&self) -> usize {
        self.len()
    }
    fn holds(&self, key: &RowKey) -> bool {
        self.contains_key(key)
    }
    fn add(&mut self, key: RowKey, c: Counts) {
        self.entry(key).or_default().add(c);
    }
}

impl RowSet for Kept {
    fn count(&self) -> usize {
        self.0.len()
    }
    fn holds(&self, key: &RowKey) -> bool {
        self.0.binary_search_by(|(k, _)| k.cmp(key)).is_ok()
    }
    fn add(&mut self, key: RowKey, c: Counts) {
        match self.0.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self.0[i].1.add(c),
            Err(i) => self.0.insert(i, (key, c)),
        }
    }
}

/// A request a security feature acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When it started, Unix seconds.
    pub at: u64,
    /// RayID.
    pub ray_id: String,
    /// The deciding match's source (`firewallCustom`, `rateLimit`, …).
    pub source: &'static str,
    /// Its action.
    pub action: &'static str,
    /// Its rule id.
    pub rule_id: String,
    /// Status answered.
    pub status: u16,
    /// ClientIP.
    pub client_ip: IpAddr,
    /// ClientCountry.
    pub country: String,
    /// ClientRequestMethod.
    pub method: String,
    /// ClientRequestPath.
    pub path: String,
}

/// One minute's counts, of one worker or merged.
#[derive(Debug, Default)]
struct Minute {
    rows: ByZone<Rows>,
    tops: ByZone<Tops>,
    events: Vec<(Box<str>, Event)>,
    /// Text of the current request's address and ASN.
    scratch: Vec<u8>,
}

impl Minute {
    fn add(&mut self, r: &RequestInfo<'_>, o: &LogRecord) {
        let rows = match self.rows.get_mut(r.zone) {
            Some(rows) => rows,
            None => self.rows.entry(r.zone.into()).or_default(),
        };
        let (source, action) = r.security.map_or(("", ""), |m| (m.source, m.action));
        let key = RowKey {
            status: o.edge_response_status,
            code: o.error_code,
            source,
            action,
            country: r.country.into(),
            cache: o.cache_status.unwrap_or(""),
        };
        count_row(
            rows,
            key,
            Counts {
                requests: 1,
                bytes: o.edge_response_bytes,
            },
        );
        let tops = match self.tops.get_mut(r.zone) {
            Some(t) => t,
            None => self.tops.entry(r.zone.into()).or_default(),
        };
        tops.add(r, &mut self.scratch);
        if let Some(m) = r.security {
            if self.events.len() >= EVENTS_PER_MINUTE {
                // The minute's first events are kept; the rest are counted in the rollups.
                return;
            }
            self.events.push((
                r.zone.into(),
                Event {
                    at: unix_secs(r.started_at),
                    ray_id: r.ray_id.into(),
                    source: m.source,
                    action: m.action,
                    rule_id: m.rule_id.clone(),
                    status: o.edge_response_status,
                    client_ip: r.client_ip,
                    country: r.country.into(),
                    method: r.method.into(),
                    path: r.path.into(),
                },
            ));
        }
    }
}

/// Finished minutes of every worker.
#[derive(Debug, Default)]
struct History {
    /// Rollups by minute (Unix minutes), then zone.
    minutes: BTreeMap<u64, ByZone<Kept>>,
    /// Top lists by hour (Unix hours), then zone.
    hours: BTreeMap<u64, ByZone<Tops>>,
    /// The latest security events of each zone, oldest first.
    events: HashMap<Box<str>, VecDeque<Event>>,
}

impl History {
    fn push_event(&mut self, zone: Box<str>, e: Event) {
        let list = self.events.entry(zone).or_default();
        if list.len() == EVENTS_PER_ZONE {
            list.pop_front();
        }
        list.push_back(e);
    }

    /// Takes a worker's finished minute; what the database is to get of it, when there is
    /// one (`persist`).
    fn take(
        &mut self,
        minute: u64,
        m: Minute,
        retention_minutes: u64,
        persist: bool,
    ) -> Option<persist::Written> {
        let mut written = persist.then(|| persist::Written {
            minute,
            rows: Vec::new(),
            tops: Vec::new(),
            events: Vec::new(),
        });
        let rows = self.minutes.entry(minute).or_default();
        for (zone, zone_rows) in m.rows {
            let into = rows.entry(zone.clone()).or_default();
            for (k, c) in zone_rows {
                if let Some(w) = &mut written {
                    w.rows.push((zone.clone(), k.clone(), c));
                }
                count_row(into, k, c);
            }
            into.0.shrink_to_fit();
        }
        let tops = self.hours.entry(minute / 60).or_default();
        for (zone, t) in m.tops {
            let hour = tops.entry(zone.clone()).or_default();
            hour.merge(&t);
            if let Some(w) = &mut written {
                w.tops.push((zone, hour.clone()));
            }
        }
        for (zone, e) in m.events {
            if let Some(w) = &mut written {
                w.events.push((zone.clone(), e.clone()));
            }
            self.push_event(zone, e);
        }
        let oldest = minute.saturating_sub(retention_minutes);
        while self
            .minutes
            .first_key_value()
            .is_some_and(|(&m, _)| m < oldest)
        {
            self.minutes.pop_first();
        }
        while self
            .hours
            .first_key_value()
            .is_some_and(|(&h, _)| h < oldest / 60)
        {
            self.hours.pop_first();
        }
        written
    }
}

/// A worker's open minute.
#[derive(Debug, Default)]
struct Open {
    minute: u64,
    counts: Minute,
}

/// Every request's counts, for the API. Shared by every worker.
pub struct Analytics {
    slots: Box<[WorkerSlot<Mutex<Open>>]>,
    history: Mutex<History>,
    retention_minutes: u64,
    persist: Option<persist::Persist>,
}

impl Default for Analytics {
    fn default() -> Self {
        Analytics::in_memory(AnalyticsConfig::default().retention)
    }
}

impl Analytics {
    fn in_memory(retention: Duration) -> Analytics {
        Analytics {
            slots: (0..SLOTS)
                .map(|_| WorkerSlot(Mutex::new(Open::default())))
                .collect(),
            history: Mutex::new(History::default()),
            retention_minutes: (retention.as_secs() / 60).max(1),
            persist: None,
        }
    }

    /// The analytics `config` asks for: with a `data_dir`, what its database holds is read
    /// back and every finished minute written to it. Also returns a note to log when the
    /// database could not be read and was moved aside. An error when no database can be
    /// made there.
    pub fn open(config: &AnalyticsConfig) -> Result<(Analytics, Option<String>), String> {
        let mut a = Analytics::in_memory(config.retention);
        let Some(dir) = &config.data_dir else {
            return Ok((a, None));
        };
        let now_minute = unix_secs(SystemTime::now()) / 60;
        let oldest = now_minute.saturating_sub(a.retention_minutes);
        let (history, persist, note) =
            persist::open(dir, oldest, a.retention_minutes, config.max_size)
                .map_err(|e| format!("analytics: {e}"))?;
        a.history = Mutex::new(history);
        a.persist = Some(persist);
        Ok((a, note))
    }

    /// At shutdown: every worker's open minute goes to the history and the database, and
    /// the database's writer finishes. Requests counted after this are not written.
    pub fn close(&self) {
        for slot in self.slots.iter() {
            let mut open = lock(&slot.0);
            let minute = std::mem::take(&mut open.minute);
            let counts = std::mem::take(&mut open.counts);
            drop(open);
            if minute != 0 {
                self.finish(minute, counts);
            }
        }
        if let Some(p) = &self.persist {
            p.close();
        }
    }

    /// Moves a worker's finished minute into the history, and hands it to the database.
    fn finish(&self, minute: u64, counts: Minute) {
        let mut history = lock(&self.history);
        let written = history.take(
            minute,
            counts,
            self.retention_minutes,
            self.persist.is_some(),
        );
        // Still under the lock (the send never waits): the writer gets the hours' top lists
        // in the order they were made, the last one last.
        if let (Some(p), Some(w)) = (&self.persist, written) {
            p.write(w);
        }
    }

    /// Finished minutes the database did not get (its writer was behind or failing).
    pub fn unwritten_minutes(&self) -> u64 {
        self.persist
            .as_ref()
            .map_or(0, |p| p.dropped.load(std::sync::atomic::Ordering::Relaxed))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What a query asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The zone.
    pub zone: String,
    /// First second included (Unix seconds).
    pub since: u64,
    /// First second excluded.
    pub until: u64,
    /// Bucket length in minutes (at least 1). The caller bounds the number of buckets.
    pub step_minutes: u64,
    /// What the series are split by.
    pub group_by: GroupBy,
}

/// A dimension the series can be split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// Status code.
    Status,
    /// Edge error code.
    Code,
    /// Security source.
    Source,
    /// Country.
    Country,
    /// Cache status.
    Cache,
}

impl GroupBy {
    /// Each dimension and its name in the `group_by` parameter.
    pub const NAMES: [(&'static str, GroupBy); 5] = [
        ("status", GroupBy::Status),
        ("code", GroupBy::Code),
        ("source", GroupBy::Source),
        ("country", GroupBy::Country),
        ("cache", GroupBy::Cache),
    ];

    /// The dimension of a `group_by` parameter.
    pub fn parse(s: &str) -> Option<GroupBy> {
        Self::NAMES.iter().find(|(n, _)| *n == s).map(|&(_, g)| g)
    }

    /// Its name in the `group_by` parameter.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, g)| *g == self)
            .map_or("", |(n, _)| n)
    }

    fn label(self, k: &RowKey) -> String {
        match self {
            GroupBy::Status => k.status.to_string(),
            GroupBy::Code => k.code.to_string(),
            GroupBy::Source => k.source.to_string(),
            GroupBy::Country => k.country.to_string(),
            GroupBy::Cache => k.cache.to_string(),
        }
    }
}

/// A query's answer.
#[derive(Debug, Default)]
pub struct Report {
    /// Requests and bytes in the whole span.
    pub totals: Counts,
    /// Per bucket (its first second, a whole multiple of the step; every bucket the span
    /// touches), requests by group.
    pub series: Vec<(u64, BTreeMap<String, u64>)>,
    /// Top lists over the hours the span touches (whole hours).
    pub tops: Option<Tops>,
    /// The zone's latest security events inside the span, newest first.
    pub events: Vec<Event>,
}

impl Analytics {
    /// Counts one finished request, from what its log line is made of.
    pub fn record(&self, r: &RequestInfo<'_>, o: &LogRecord) {
        let minute = unix_secs(r.started_at) / 60;
        let slot = &self.slots[crate::worker::worker_index() % SLOTS].0;
        let mut open = lock(slot);
        // A request that started in an earlier minute and ends now counts in the open one:
        // a worker's minute only moves forward.
        let minute = minute.max(open.minute);
        if open.minute != minute {
            let finished = std::mem::take(&mut open.counts);
            let finished_minute = std::mem::replace(&mut open.minute, minute);
            if finished_minute != 0 {
                self.finish(finished_minute, finished);
            }
        }
        open.counts.add(r, o);
    }

    /// Answers `q` from the history and every worker's open minute.
    pub fn query(&self, q: &Query) -> Report {
        let step = q.step_minutes.max(1);
        let (first, end) = (q.since / 60, q.until.div_ceil(60));
        // Buckets start at whole multiples of the step (whole hours for 1h), and every bucket
        // the span touches is there, empty ones included, so that a chart has no gaps.
        let mut buckets: BTreeMap<u64, BTreeMap<String, u64>> = (first - first % step..end)
            .step_by(step as usize)
            .map(|m| (m * 60, BTreeMap::new()))
            .collect();
        let mut report = Report::default();
        let mut count = |minute: u64,
                         rows: &mut dyn Iterator<Item = (&RowKey, &Counts)>,
                         report: &mut Report| {
            if minute < first || minute >= end {
                return;
            }
            let bucket = buckets.entry((minute - minute % step) * 60).or_default();
            for (k, c) in rows {
                report.totals.add(*c);
                *bucket.entry(q.group_by.label(k)).or_default() += c.requests;
            }
        };
        let mut tops = Tops::default();
        let mut has_tops = false;
        let mut events = Vec::new();
        {
            let h = lock(&self.history);
            for (&minute, zones) in h.minutes.range(first..end) {
                if let Some(rows) = zones.get(q.zone.as_str()) {
                    count(minute, &mut rows.0.iter().map(|(k, c)| (k, c)), &mut report);
                }
            }
            for zones in h.hours.range(first / 60..end.div_ceil(60)).map(|(_, z)| z) {
                if let Some(t) = zones.get(q.zone.as_str()) {
                    tops.merge(t);
                    has_tops = true;
                }
            }
            if let Some(list) = h.events.get(q.zone.as_str()) {
                events.extend(list.iter().cloned());
            }
        }
        for slot in self.slots.iter() {
            let open = lock(&slot.0);
            if let Some(rows) = open.counts.rows.get(q.zone.as_str()) {
                count(open.minute, &mut rows.iter(), &mut report);
            }
            if open.minute >= first
                && open.minute < end
                && let Some(t) = open.counts.tops.get(q.zone.as_str())
            {
                tops.merge(t);
                has_tops = true;
            }
            events.extend(
                open.counts
                    .events
                    .iter()
                    .filter(|(z, _)| **z == *q.zone)
                    .map(|(_, e)| e.clone()),
            );
        }
        events.retain(|e| e.at >= q.since && e.at < q.until);
        events.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.ray_id.cmp(&a.ray_id)));
        events.truncate(EVENTS_PER_ZONE);
        report.series = buckets.into_iter().collect();
        report.tops = has_tops.then_some(tops);
        report.events = events;
        report
    }
}

#[cfg(test)]
mod tests;
