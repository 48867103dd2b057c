//! Purges and configuration changes, fanned out to every node of the fleet over Redis
//! pub/sub, on the channel `rampart:fleet:<db>` ([`channel`]): pub/sub is not scoped by
//! database in Redis, and a fleet is one database.
//!
//! A message is `<HMAC-SHA256 in hex> <JSON>`, signed with the fleet secret: a node applies
//! only what a node of its own fleet sent, whoever else can write to Redis. Configuration
//! changes carry a version from a Redis counter; a node applies a version only once and only
//! in increasing order, checks the text with its own loader before writing it to its own
//! file (the file stays the source of truth), and then reloads. A node that lost its
//! subscription catches up with the last change stored in Redis when it subscribes again.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;
use ring::hmac;
use serde_json::{Value, json};
use tokio::sync::mpsc::Receiver;

use super::{Throttled, backoff};
use crate::cache::purge::{self, Purge};
use crate::config::fleet::FleetConfig;
use crate::config::save::{SaveError, replace_file};
use crate::runtime::{Announcement, Runtime};

/// The pub/sub channel of the fleet whose Redis database `client` names.
pub fn channel(client: &redis::Client) -> String {
    format!(
        "rampart:fleet:{}",
        client.get_connection_info().redis_settings().db()
    )
}

/// The configuration version counter.
const VERSION_KEY: &str = "rampart:config:version";

/// A random id of the counter's life: a Redis that lost its data (restarted without
/// persistence, flushed, failed over to a lagging replica) starts counting again from 1 under
/// a new epoch, and nodes take its versions instead of ignoring them as old.
const EPOCH_KEY: &str = "rampart:config:epoch";

/// The last configuration message, for nodes that missed it.
const LATEST_KEY: &str = "rampart:config:latest";

/// Attempts to send one announcement before it is given up (and logged).
const SEND_ATTEMPTS: u32 = 4;

/// The longest one attempt to send may take: announcements are not on any request's path.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// A configuration version: the counter's epoch and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    epoch: String,
    number: u64,
}

impl Version {
    fn of(message: &Value) -> Version {
        Version {
            epoch: message["epoch"].as_str().unwrap_or_default().to_string(),
            number: message["version"].as_u64().unwrap_or(0),
        }
    }

    /// Whether a node that has `applied` takes this one: any version of another epoch, or a
    /// higher one of the same.
    fn is_newer_than(&self, applied: Option<&Version>) -> bool {
        applied.is_none_or(|a| a.epoch != self.epoch || self.number > a.number)
    }
}

/// The version in force on this node, shared by the sender (its own changes) and the
/// receiver (the others').
pub type Applied = Arc<std::sync::Mutex<Option<Version>>>;

fn lock(applied: &Applied) -> std::sync::MutexGuard<'_, Option<Version>> {
    applied.lock().unwrap_or_else(|p| p.into_inner())
}

fn signing_key(config: &FleetConfig) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, &config.secret)
}

/// `<signature> <json>`.
fn seal(key: &hmac::Key, body: &Value) -> String {
    let json = body.to_string();
    let tag = hmac::sign(key, json.as_bytes());
    format!("{} {json}", crate::text::hex(tag.as_ref()))
}

/// The JSON of a message whose signature is right.
fn open(key: &hmac::Key, message: &[u8]) -> Result<Value, &'static str> {
    let space = message
        .iter()
        .position(|&b| b == b' ')
        .ok_or("no signature")?;
    let (tag, json) = (&message[..space], &message[space + 1..]);
    let tag = std::str::from_utf8(tag)
        .ok()
        .and_then(crate::text::unhex)
        .ok_or("a malformed signature")?;
    hmac::verify(key, json, &tag).map_err(|_| "a wrong signature (another fleet's secret?)")?;
    serde_json::from_slice(json).map_err(|_| "not JSON")
}

/// Sends this node's announcements; runs until the queue closes.
pub(super) async fn send(
    rt: Arc<Runtime>,
    mut queue: Receiver<Announcement>,
    conn: ConnectionManager,
    config: Arc<FleetConfig>,
    channel: String,
    applied: Applied,
) {
    let key = signing_key(&config);
    while let Some(announcement) = queue.recv().await {
        let kind = match &announcement {
            Announcement::Purge { .. } if config.purge => "purge",
            Announcement::Config(_) if config.config => "config",
            _ => continue,
        };
        let mut outcome = Err(String::new());
        for attempt in 0..SEND_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let publish = publish(&conn, &key, &config.node, &announcement, &channel, &applied);
            outcome = match tokio::time::timeout(SEND_TIMEOUT, publish).await {
                Ok(Ok(receivers)) => Ok(receivers),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {SEND_TIMEOUT:?}")),
            };
            if outcome.is_ok() {
                break;
            }
        }
        match outcome {
            Ok(receivers) => {
                rt.metrics.fleet_message(kind, "sent");
                tracing::info!("fleet: {kind} sent to {receivers} subscribers");
            }
            Err(e) => {
                rt.metrics.fleet_message(kind, "failed");
                tracing::error!(
                    "fleet: a {kind} was applied on this node but not sent to the others ({e} after {SEND_ATTEMPTS} attempts): repeat it once Redis is back"
                );
            }
        }
    }
}

async fn publish(
    conn: &ConnectionManager,
    key: &hmac::Key,
    node: &str,
    announcement: &Announcement,
    channel: &str,
    applied: &Applied,
) -> redis::RedisResult<u64> {
    let mut conn = conn.clone();
    match announcement {
        Announcement::Purge { zone, body } => {
            let body = String::from_utf8_lossy(body);
            let message = seal(
                key,
                &json!({"kind": "purge", "node": node, "zone": zone, "body": body}),
            );
            conn.publish(channel, message).await
        }
        Announcement::Config(text) => {
            let fresh = format!("{:016x}", fastrand::u64(..));
            let () = redis::cmd("SET")
                .arg(EPOCH_KEY)
                .arg(&fresh)
                .arg("NX")
                .query_async::<Option<String>>(&mut conn)
                .await
                .map(drop)?;
            let epoch: String = conn.get(EPOCH_KEY).await?;
            let number: u64 = conn.incr(VERSION_KEY, 1).await?;
            // This node's own change is in force here: an older one from another node
            // (edits made at the same time on two nodes) must not replace it.
            let version = Version { epoch, number };
            {
                let mut in_force = lock(applied);
                if version.is_newer_than(in_force.as_ref()) {
                    *in_force = Some(version.clone());
                }
            }
            let message = seal(
                key,
                &json!({"kind": "config", "node": node, "epoch": version.epoch, "version": version.number, "text": text}),
            );
            let () = conn.set(LATEST_KEY, &message).await?;
            conn.publish(channel, message).await
        }
    }
}

/// Receives the other nodes' announcements; runs until aborted, subscribing again (with a
/// back-off) whenever the subscription is lost.
pub(super) async fn receive(
    rt: Arc<Runtime>,
    client: redis::Client,
    config: Arc<FleetConfig>,
    applied: Applied,
) {
    let key = signing_key(&config);
    let channel = channel(&client);
    let mut subscribed_before = false;
    let mut failures = 0u32;
    let mut log = Throttled::new();
    loop {
        match subscribe(&client, &channel).await {
            Ok((mut pubsub, latest)) => {
                if failures > 0 {
                    tracing::info!("fleet: subscribed to {channel} again");
                }
                failures = 0;
                let latest = latest.and_then(|m| open(&key, m.as_bytes()).ok().map(|v| (m, v)));
                let again = std::mem::replace(&mut subscribed_before, true);
                match latest {
                    // Start-up: this node's file is where it starts from.
                    Some((_, v)) if !again => {
                        let mut in_force = lock(&applied);
                        if in_force.is_none() {
                            *in_force = Some(Version::of(&v));
                        }
                    }
                    // Back after a loss: catch up with the change missed, if any.
                    Some((m, _)) => handle(&rt, &config, &key, m.as_bytes(), &applied).await,
                    None => {}
                }
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    handle(&rt, &config, &key, message.get_payload_bytes(), &applied).await;
                }
                log.error(format_args!(
                    "fleet: lost the subscription to {channel} on {}; subscribing again",
                    config.redis
                ));
            }
            Err(e) => log.error(format_args!(
                "fleet: cannot subscribe to {channel} on {}: {e}; trying again in {}",
                config.redis,
                humantime::format_duration(backoff(failures))
            )),
        }
        tokio::time::sleep(backoff(failures)).await;
        failures = failures.saturating_add(1);
    }
}

/// A subscription, and the last configuration message stored.
async fn subscribe(
    client: &redis::Client,
    channel: &str,
) -> redis::RedisResult<(redis::aio::PubSub, Option<String>)> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let latest: Option<String> = conn.get(LATEST_KEY).await?;
        Ok((pubsub, latest))
    };
    tokio::time::timeout(SEND_TIMEOUT, connect)
        .await
        .unwrap_or_else(|_| {
            Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "no answer",
                format!("within {SEND_TIMEOUT:?}"),
            )))
        })
}

/// Applies one message from another node.
async fn handle(
    rt: &Arc<Runtime>,
    config: &FleetConfig,
    key: &hmac::Key,
    message: &[u8],
    applied: &Applied,
) {
    let value = match open(key, message) {
        Ok(v) => v,
        Err(why) => {
            rt.metrics.fleet_message("unknown", "rejected");
            tracing::error!("fleet: ignored a message with {why}");
            return;
        }
    };
    if value["node"].as_str() == Some(config.node.as_str()) {
        return;
    }
    let from = value["node"].as_str().unwrap_or("?").to_string();
    match value["kind"].as_str() {
        Some("purge") if config.purge => {
            rt.metrics.fleet_message("purge", "received");
            let zone = value["zone"].as_str().unwrap_or_default().to_string();
            let body = value["body"].as_str().unwrap_or_default();
            let generation = rt.generation();
            if !generation.config.zones.iter().any(|z| z.name == zone) {
                rt.metrics.fleet_message("purge", "rejected");
                tracing::warn!(
                    "fleet: a purge from `{from}` names zone `{zone}`, which this node does not have"
                );
                return;
            }
            match Purge::from_json(body.as_bytes()) {
                Ok(p) => {
                    let purged = purge::apply_off_thread(rt.cache.clone(), zone.clone(), p).await;
                    rt.metrics.fleet_message("purge", "applied");
                    tracing::info!(zone, purged, "fleet: cache purge from `{from}`: {body}");
                }
                Err(e) => {
                    rt.metrics.fleet_message("purge", "rejected");
                    tracing::error!("fleet: a purge from `{from}` is not valid: {e}");
                }
            }
        }
        Some("config") if config.config => {
            let version = Version::of(&value);
            // One change of the file at a time, with the management API's edits.
            let _one_at_a_time = crate::config::save::EDITING.lock().await;
            let in_force = lock(applied).clone();
            if !version.is_newer_than(in_force.as_ref()) {
                rt.metrics.fleet_message("config", "stale");
                tracing::warn!(
                    "fleet: configuration version {} from `{from}` is not newer than version {} in force here; ignored",
                    version.number,
                    in_force.map_or(0, |v| v.number)
                );
                return;
            }
            rt.metrics.fleet_message("config", "received");
            let text = value["text"].as_str().unwrap_or_default();
            apply_config(rt, &from, version.number, text);
            *lock(applied) = Some(version);
        }
        _ => {}
    }
}

/// Checks another node's configuration text with this node's loader, writes it to this
/// node's file and reloads. A text that is not valid here changes nothing.
fn apply_config(rt: &Runtime, from: &str, version: u64, text: &str) {
    let Some(path) = rt.generation().config.source.clone() else {
        rt.metrics.fleet_message("config", "rejected");
        tracing::error!(
            "fleet: configuration version {version} from `{from}` not applied: this node runs the embedded default and has no file to keep it in"
        );
        return;
    };
    match replace_file(&path, text) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                tracing::warn!("fleet: {w}");
            }
            rt.reload(loaded.config);
            rt.metrics.fleet_message("config", "applied");
            tracing::info!(
                "fleet: configuration version {version} from `{from}` written to {} and in force",
                path.display()
            );
        }
        Err(SaveError::Invalid(errors)) => {
            rt.metrics.fleet_message("config", "rejected");
            for e in &errors {
                tracing::error!("fleet: configuration version {version} from `{from}`: {e}");
            }
            tracing::error!(
                "fleet: configuration version {version} from `{from}` is not valid on this node; still running the previous one"
            );
        }
        Err(SaveError::Io(e)) => {
            rt.metrics.fleet_message("config", "failed");
            tracing::error!("fleet: configuration version {version} from `{from}`: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_messages_signed_with_the_fleet_secret_open() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"sixteen bytes at least");
        let other = hmac::Key::new(hmac::HMAC_SHA256, b"another fleet's secret");
        let sealed = seal(&key, &json!({"kind": "purge", "zone": "a"}));
        assert_eq!(open(&key, sealed.as_bytes()).unwrap()["zone"], "a");
        assert!(open(&other, sealed.as_bytes()).is_err());
        let tampered = sealed.replace("\"a\"", "\"b\"");
        assert!(open(&key, tampered.as_bytes()).is_err());
        assert!(open(&key, b"{\"kind\":\"purge\"}").is_err());
    }
}
