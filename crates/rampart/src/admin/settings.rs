//! `/client/v4/zones/{zone}/url_normalization`: a zone's URL normalisation, read and set in
//! Cloudflare's shape (`{"type": "cloudflare" | "rfc3986", "scope": "incoming" | "both" |
//! "none"}`), kept in the configuration file as the zone's `url_normalization`.

// As in rules.rs: early returns of whole answers on a cold path.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{Envelope, Failure, MAX_BODY, ZonePath, code, failure, success};
use super::auth::Caller;
use super::document::{self, Document};
use super::rule_routes::IfMatch;
use super::rules::{EDITING, etag, object, precondition, refused, table_of, with_etag};
use super::schema::UrlNormalization;
use crate::config::api::Scope;
use crate::runtime::Runtime;

/// The setting's key in the zone's table, and its values when the file says nothing.
const KEY: &str = "url_normalization";
const DEFAULTS: [(&str, &str); 2] = [("type", "cloudflare"), ("scope", "incoming")];
/// The key prefix of the loader's errors about it, for JSON pointers.
const SENT: &str = "url_normalization.";

/// The routes, relative to `/client/v4`.
pub(super) fn routes() -> OpenApiRouter<Arc<Runtime>> {
    OpenApiRouter::new().routes(routes!(read, set))
}

/// The setting as the file has it, the defaults filled in.
fn current(doc: &mut Document, zone: &str) -> Result<Value, Response> {
    let table = doc
        .zone_mut(zone)
        .map_err(|e| refused(e, zone, Some(SENT)))?;
    let mut value = match table.get(KEY) {
        Some(item) => match item {
            toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => {
                document::table_json(&t.clone().into_table())
            }
            toml_edit::Item::Table(t) => document::table_json(t),
            _ => json!({}),
        },
        None => json!({}),
    };
    if let Value::Object(m) = &mut value {
        for (k, v) in DEFAULTS {
            m.entry(k).or_insert(json!(v));
        }
    }
    Ok(value)
}

/// The zone's URL normalisation.
#[utoipa::path(get, path = "/zones/{zone}/url_normalization", tag = "zones",
    operation_id = "get_url_normalization", params(ZonePath),
    responses(
        (status = 200, description = "The setting, defaults filled in.",
            body = Envelope<UrlNormalization>,
            headers(("ETag" = String, description = "Its version, for If-Match."))),
        (status = 404, description = "No such zone (code 7003).", body = Failure),
    ))]
async fn read(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    Path(zone): Path<String>,
) -> Response {
    let answer = (|| {
        caller
            .allow(Scope::ZoneRead, Some(&zone))
            .map_err(IntoResponse::into_response)?;
        let mut doc = Document::open(&rt).map_err(|e| refused(e, &zone, Some(SENT)))?;
        let value = current(&mut doc, &zone)?;
        let tag = etag(&value);
        Ok(with_etag(success(value), &tag))
    })();
    answer.unwrap_or_else(|e| e)
}

/// Sets the zone's URL normalisation: `{"type", "scope"}`, either of which may be left out
/// (it keeps its value).
#[utoipa::path(put, path = "/zones/{zone}/url_normalization", tag = "zones",
    operation_id = "set_url_normalization", params(ZonePath, IfMatch),
    request_body(content = UrlNormalization, content_type = "application/json"),
    responses(
        (status = 200, description = "The setting now.", body = Envelope<UrlNormalization>,
            headers(("ETag" = String, description = "Its new version."))),
        (status = 400, description = "A value the loader refuses (1004) or a key it does not \
            have (1016).", body = Failure),
        (status = 404, description = "No such zone (code 7003).", body = Failure),
        (status = 409, description = "No configuration file to keep it in (1410).",
            body = Failure),
        (status = 412, description = "It changed since the If-Match version (1412).",
            body = Failure),
    ))]
async fn set(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    Path(zone): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(denied) = caller.allow(Scope::ZoneEdit, Some(&zone)) {
        return denied.into_response();
    }
    let change = match object(&headers, body, MAX_BODY) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(k) = change
        .keys()
        .find(|k| !DEFAULTS.iter().any(|(d, _)| d == k))
    {
        return failure(
            StatusCode::BAD_REQUEST,
            code::BAD_BODY,
            format!("/{k}: URL normalisation has `type` and `scope` only"),
        );
    }
    let _one_at_a_time = EDITING.lock().await;
    let answer = (|| {
        let mut doc = Document::open(&rt).map_err(|e| refused(e, &zone, Some(SENT)))?;
        let before = current(&mut doc, &zone)?;
        precondition(&headers, &etag(&before))?;
        let mut after: Map<String, Value> = before.as_object().cloned().unwrap_or_default();
        after.extend(change);
        let table = table_of(&after)?;
        let zone_table = doc
            .zone_mut(&zone)
            .map_err(|e| refused(e, &zone, Some(SENT)))?;
        zone_table.insert(
            KEY,
            toml_edit::Item::Value(toml_edit::Value::InlineTable(table.into_inline_table())),
        );
        doc.commit(&rt).map_err(|e| refused(e, &zone, Some(SENT)))?;
        let after = Value::Object(after);
        document::audit(
            &rt,
            caller.name(),
            "URL normalisation set",
            &zone,
            &before,
            &after,
        );
        tracing::info!(
            zone,
            caller = caller.name(),
            "management API: URL normalisation set"
        );
        let tag = etag(&after);
        Ok(with_etag(success(after), &tag))
    })();
    answer.unwrap_or_else(|e| e)
}
