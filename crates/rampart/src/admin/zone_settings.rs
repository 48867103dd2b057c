//! `/client/v4/zones/{zone}/settings/{setting}`: a zone's one-value settings in Cloudflare's
//! shape (`{"id", "value", "editable"}`, changed with `PATCH {"value"}`), kept in the
//! configuration file as the zone's keys:
//!
//! | setting | value | key in the file |
//! |---|---|---|
//! | `security_level` | `off`, `essentially_off`, `low`, `medium`, `high`, `under_attack` | `security_level` |
//! | `browser_check` | `on`, `off` | `browser_integrity_check` |

// As in rules.rs: early returns of whole answers on a cold path.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{Envelope, Failure, MAX_BODY, ZonePath, code, failure, success};
use super::auth::Caller;
use super::document::{self, Document};
use super::rule_routes::IfMatch;
use super::rules::{EDITING, etag, object, precondition, refused, with_etag};
use crate::config::api::Scope;
use crate::config::challenge::SecurityLevel;
use crate::runtime::Runtime;

/// One setting: its name in the API, its key in the file, and how values map between them.
struct Setting {
    id: &'static str,
    key: &'static str,
    /// The API's values, each with the file's value.
    values: &'static [(&'static str, FileValue)],
    default: &'static str,
}

#[derive(Clone, Copy, PartialEq)]
enum FileValue {
    Text(&'static str),
    Flag(bool),
}

const SECURITY_LEVELS: [(&str, FileValue); 6] = {
    let n = SecurityLevel::NAMES;
    [
        (n[0].0, FileValue::Text(n[0].0)),
        (n[1].0, FileValue::Text(n[1].0)),
        (n[2].0, FileValue::Text(n[2].0)),
        (n[3].0, FileValue::Text(n[3].0)),
        (n[4].0, FileValue::Text(n[4].0)),
        (n[5].0, FileValue::Text(n[5].0)),
    ]
};

const SETTINGS: [Setting; 2] = [
    Setting {
        id: "security_level",
        key: "security_level",
        values: &SECURITY_LEVELS,
        default: "medium",
    },
    Setting {
        id: "browser_check",
        key: "browser_integrity_check",
        values: &[
            ("on", FileValue::Flag(true)),
            ("off", FileValue::Flag(false)),
        ],
        default: "on",
    },
];

/// The routes, relative to `/client/v4`.
pub(super) fn routes() -> OpenApiRouter<Arc<Runtime>> {
    OpenApiRouter::new()
        .routes(routes!(get_security_level, change_security_level))
        .routes(routes!(get_browser_check, change_browser_check))
}

/// A setting as the API shows it.
#[derive(Serialize, ToSchema)]
struct ZoneSetting {
    /// The setting's name.
    id: String,
    /// Its value.
    value: String,
    /// Always true: every setting here can be changed through the API.
    editable: bool,
}

/// A change of the security level.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by the handler from the JSON object; this only describes it
struct SecurityLevelChange {
    #[schema(schema_with = security_levels)]
    value: String,
}

fn security_levels() -> utoipa::openapi::Object {
    super::schema::one_of(
        utoipa::openapi::Type::String,
        SecurityLevel::NAMES.iter().map(|(n, _)| *n),
    )
}

/// A change of the Browser Integrity Check.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by the handler from the JSON object; this only describes it
struct BrowserCheckChange {
    value: OnOff,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum OnOff {
    On,
    Off,
}

/// The zone's security level: which threat scores are challenged (`under_attack`: every
/// visitor without a clearance).
#[utoipa::path(get, path = "/zones/{zone}/settings/security_level", tag = "zones",
    operation_id = "get_security_level", params(ZonePath),
    responses(
        (status = 200, description = "The setting.", body = Envelope<ZoneSetting>,
            headers(("ETag" = String, description = "Its version, for If-Match."))),
        (status = 404, description = "No such zone (code 7003).", body = Failure),
    ))]
async fn get_security_level(
    rt: State<Arc<Runtime>>,
    caller: Extension<Caller>,
    Path(zone): Path<String>,
) -> Response {
    read(rt, caller, zone, &SETTINGS[0]).await
}

/// Sets the zone's security level, at once for new requests, and in the configuration file.
#[utoipa::path(patch, path = "/zones/{zone}/settings/security_level", tag = "zones",
    operation_id = "change_security_level", params(ZonePath, IfMatch),
    request_body(content = SecurityLevelChange, content_type = "application/json"),
    responses(
        (status = 200, description = "The setting now.", body = Envelope<ZoneSetting>,
            headers(("ETag" = String, description = "Its new version."))),
        (status = 404, description = "No such zone (code 7003).", body = Failure),
        (status = 409, description = "No configuration file to keep it in (1410).",
            body = Failure),
        (status = 412, description = "It changed since the If-Match version (1412).",
            body = Failure),
    ))]
async fn change_security_level(
    rt: State<Arc<Runtime>>,
    caller: Extension<Caller>,
    Path(zone): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    change(rt, caller, zone, headers, body, &SETTINGS[0]).await
}

/// Whether the zone's Browser Integrity Check is on.
#[utoipa::path(get, path = "/zones/{zone}/settings/browser_check", tag = "zones",
    operation_id = "get_browser_check", params(ZonePath),
    responses(
        (status = 200, description = "The setting.", body = Envelope<ZoneSetting>,
            headers(("ETag" = String, description = "Its version, for If-Match."))),
        (status = 404, description = "No such zone (code 7003).", body = Failure),
    ))]
async fn get_browser_check(
    rt: State<Arc<Runtime>>,
    caller: Extension<Caller>,
    Path(zone): Path<String>,
) -> Response {
    read(rt, caller, zone, &SETTINGS[1]).await
}

/// Turns the zone's Browser Integrity Check on or off, at once, and in the file.
#[utoipa::path(patch, path = "/zones/{zone}/settings/browser_check", tag = "zones",
    operation_id = "change_browser_check", params(ZonePath, IfMatch),
    request_body(content = BrowserCheckChange, content_type = "application/json"),
    responses(
        (status = 200, description = "The setting now.", body = Envelope<ZoneSetting>,
            headers(("ETag" = String, description = "Its new version."))),
        (status = 404, description = "No such zone (code 7003).", body = Failure),
        (status = 409, description = "No configuration file to keep it in (1410).",
            body = Failure),
        (status = 412, description = "It changed since the If-Match version (1412).",
            body = Failure),
    ))]
async fn change_browser_check(
    rt: State<Arc<Runtime>>,
    caller: Extension<Caller>,
    Path(zone): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    change(rt, caller, zone, headers, body, &SETTINGS[1]).await
}

/// The setting's value in the file (its default when the file says nothing).
fn current(doc: &mut Document, zone: &str, s: &Setting) -> Result<String, Response> {
    let table = doc.zone_mut(zone).map_err(|e| refused(e, zone, None))?;
    let file = match table.get(s.key).and_then(|i| i.as_value()) {
        Some(toml_edit::Value::String(v)) => Some(FileValue::Text(
            s.values
                .iter()
                .find_map(|(_, f)| match f {
                    FileValue::Text(t) if *t == v.value() => Some(*t),
                    _ => None,
                })
                .unwrap_or(""),
        )),
        Some(toml_edit::Value::Boolean(b)) => Some(FileValue::Flag(*b.value())),
        _ => None,
    };
    Ok(match file {
        Some(f) => s
            .values
            .iter()
            .find(|(_, v)| *v == f)
            .map_or(s.default, |(api, _)| api),
        None => s.default,
    }
    .to_string())
}

fn shown(s: &Setting, value: String) -> ZoneSetting {
    ZoneSetting {
        id: s.id.to_string(),
        value,
        editable: true,
    }
}

async fn read(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    zone: String,
    s: &Setting,
) -> Response {
    if let Err(denied) = caller.allow(Scope::ZoneRead, Some(&zone)) {
        return denied.into_response();
    }
    let answer = (|| {
        let mut doc = Document::open(&rt).map_err(|e| refused(e, &zone, None))?;
        let value = current(&mut doc, &zone, s)?;
        let tag = etag(&value);
        Ok(with_etag(success(shown(s, value)), &tag))
    })();
    answer.unwrap_or_else(|e| e)
}

async fn change(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    zone: String,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    s: &Setting,
) -> Response {
    if let Err(denied) = caller.allow(Scope::ZoneEdit, Some(&zone)) {
        return denied.into_response();
    }
    let sent = match object(&headers, body, MAX_BODY) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let wanted = match (sent.len(), sent.get("value").and_then(Value::as_str)) {
        (1, Some(v)) => s.values.iter().find(|(api, _)| *api == v),
        _ => None,
    };
    let Some(&(value, file_value)) = wanted else {
        let values: Vec<&str> = s.values.iter().map(|(v, _)| *v).collect();
        return failure(
            StatusCode::BAD_REQUEST,
            code::BAD_BODY,
            format!(
                "expected {{\"value\": ...}} with one of: {}",
                values.join(", ")
            ),
        );
    };
    let _one_at_a_time = EDITING.lock().await;
    let answer = (|| {
        let mut doc = Document::open(&rt).map_err(|e| refused(e, &zone, None))?;
        let before = current(&mut doc, &zone, s)?;
        precondition(&headers, &etag(&before))?;
        let table = doc.zone_mut(&zone).map_err(|e| refused(e, &zone, None))?;
        let item = match file_value {
            FileValue::Text(t) => toml_edit::value(t),
            FileValue::Flag(b) => toml_edit::value(b),
        };
        table.insert(s.key, item);
        let key = format!("{}.", s.key);
        doc.commit(&rt).map_err(|e| refused(e, &zone, Some(&key)))?;
        document::audit(
            &rt,
            caller.name(),
            &format!("zone setting {} changed", s.id),
            &zone,
            &json!(before),
            &json!(value),
        );
        tracing::info!(
            zone,
            caller = caller.name(),
            "management API: {} = {value}",
            s.id
        );
        let tag = etag(&value);
        Ok(with_etag(success(shown(s, value.to_string())), &tag))
    })();
    answer.unwrap_or_else(|e| e)
}
