//! `/client/v4/zones/{zone}/custom_rules`, `…/rate_limits` and `…/ip_access_rules`: a zone's
//! custom rules, rate limiting rules and IP access rules, listed, created, replaced, deleted
//! and reordered through the API, kept in the configuration file.
//!
//! A rule is its `[[zone.custom_rule]]` (`[[zone.rate_limit]]`, `[[zone.ip_access_rule]]`)
//! table as JSON, with the keys the file takes. A rule made without an `id` gets one. The list
//! answers with an `ETag`; a change sent with `If-Match` is made only while the list still has
//! that tag (412 otherwise), so two editors cannot overwrite each other unseen. A change is
//! checked by the configuration's own loader: a bad expression answers 400 with the loader's
//! message and caret, and a JSON pointer to the rule's field.

// The handlers return early with whole answers (`Result<_, Response>` and `?`): a large `Err`
// costs a copy on the admin plane's cold paths, and reads better than boxing every refusal.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::api::{
    ApiMessage, MAX_BODY, Source, body_bytes, code, failure, failures, not_json, success,
};
use super::auth::Caller;
use super::document::{self, Document, EditError};
use super::schema::Reorder;
use crate::config::api::Scope;
use crate::runtime::Runtime;

pub(super) use crate::config::save::EDITING;

/// A zone's list of rules that the API edits: its key in the file, and its name in messages
/// and the audit log.
pub(super) struct Resource {
    key: &'static str,
    one: &'static str,
    many: &'static str,
}

/// Which list a handler edits.
pub(super) trait Kind: Send + Sync + 'static {
    const RES: Resource;
}

/// `[[zone.custom_rule]]`.
pub(super) struct CustomRules;
impl Kind for CustomRules {
    const RES: Resource = Resource {
        key: "custom_rule",
        one: "custom rule",
        many: "custom rules",
    };
}

/// `[[zone.rate_limit]]`.
pub(super) struct RateLimits;
impl Kind for RateLimits {
    const RES: Resource = Resource {
        key: "rate_limit",
        one: "rate limiting rule",
        many: "rate limiting rules",
    };
}

/// `[[zone.ip_access_rule]]`.
pub(super) struct IpAccessRules;
impl Kind for IpAccessRules {
    const RES: Resource = Resource {
        key: "ip_access_rule",
        one: "IP access rule",
        many: "IP access rules",
    };
}

/// The zone's rules as JSON, each with its `id` (`custom_rule.N` for a rule of the file
/// without one, as the log names it).
fn rules_of(doc: &mut Document, res: &Resource, zone: &str) -> Result<Vec<Value>, EditError> {
    let list = doc.zone_list(zone, res.key)?;
    Ok(list
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut rule = document::table_json(t);
            if let Value::Object(m) = &mut rule
                && !m.contains_key("id")
            {
                m.insert("id".into(), json!(format!("{}.{}", res.key, i + 1)));
            }
            rule
        })
        .collect())
}

/// The tag of what the API answers (a list of rules, a setting, a list): a digest of it as
/// JSON.
pub(super) fn etag<T: serde::Serialize + ?Sized>(what: &T) -> String {
    let text = serde_json::to_string(what).unwrap_or_default();
    let digest = super::auth::sha256(text.as_bytes());
    format!("\"{}\"", crate::text::hex(&digest[..12]))
}

pub(super) fn with_etag(mut r: Response, tag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(tag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// The answer to an edit that was not made.
/// `prefix`: the key of what the request sent (`custom_rule[2].`), for JSON pointers into it.
pub(super) fn refused(e: EditError, zone: &str, prefix: Option<&str>) -> Response {
    match e {
        EditError::NoFile => failure(
            StatusCode::CONFLICT,
            code::NO_FILE,
            "rampart runs the embedded default: there is no configuration file to keep changes \
             in (run it with -c FILE)"
                .into(),
        ),
        EditError::Io(message) => failure(StatusCode::INTERNAL_SERVER_ERROR, code::IO, message),
        EditError::NoZone => super::api::no_zone(zone),
        EditError::Invalid(errors) => {
            let errors = errors
                .iter()
                .map(|e| {
                    // `zone[2].custom_rule[0].expression` → `/expression` for the rule sent.
                    let pointer = prefix.and_then(|p| {
                        let at = e.key.find(p)?;
                        Some(format!("/{}", e.key[at + p.len()..].replace('.', "/")))
                    });
                    ApiMessage {
                        code: code::INVALID,
                        message: e.to_string(),
                        source: pointer.map(|pointer| Source { pointer }),
                    }
                })
                .collect();
            failures(StatusCode::BAD_REQUEST, errors)
        }
    }
}

/// A request body that is one JSON object, or the 400/413/415.
pub(super) fn object(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Map<String, Value>, Response> {
    if let Some(r) = not_json(headers) {
        return Err(r);
    }
    let body = body_bytes(body, limit)?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(failure(
            StatusCode::BAD_REQUEST,
            code::BAD_BODY,
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(failure(
            StatusCode::BAD_REQUEST,
            code::BAD_BODY,
            format!("malformed JSON: {e}"),
        )),
    }
}

/// `object` as a table of the file, or the 400 naming (by JSON pointer) a value TOML cannot
/// hold.
pub(super) fn table_of(object: &Map<String, Value>) -> Result<toml_edit::Table, Response> {
    document::json_table(object).map_err(|pointer| {
        failure(
            StatusCode::BAD_REQUEST,
            code::BAD_BODY,
            format!("{pointer}: null is not a value the configuration can hold"),
        )
    })
}

/// 412 when `If-Match` names another version of the list than `current`.
pub(super) fn precondition(headers: &HeaderMap, current: &str) -> Result<(), Response> {
    let Some(wanted) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let matches = wanted.trim() == "*"
        || wanted
            .split(',')
            .any(|t| t.trim().trim_start_matches("W/") == current);
    match matches {
        true => Ok(()),
        false => Err(with_etag(
            failure(
                StatusCode::PRECONDITION_FAILED,
                code::PRECONDITION,
                "the rules changed since the version If-Match names: read them again".into(),
            ),
            current,
        )),
    }
}

type Answer = Result<Response, Response>;

fn done(r: Answer) -> Response {
    r.unwrap_or_else(|e| e)
}

/// The zone's rules, for a caller that may read them.
fn read(res: &Resource, rt: &Runtime, caller: &Caller, zone: &str) -> Result<Vec<Value>, Response> {
    caller
        .allow(Scope::FirewallRead, Some(zone))
        .map_err(IntoResponse::into_response)?;
    let mut doc = Document::open(rt).map_err(|e| refused(e, zone, None))?;
    rules_of(&mut doc, res, zone).map_err(|e| refused(e, zone, None))
}

/// `GET …/custom_rules` (or `…/rate_limits`).
pub(super) async fn list<K: Kind>(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    Path(zone): Path<String>,
) -> Response {
    done(read(&K::RES, &rt, &caller, &zone).map(|rules| {
        let tag = etag(&rules);
        with_etag(success(Value::Array(rules)), &tag)
    }))
}

/// `GET …/custom_rules/{id}` (or `…/rate_limits/{id}`).
pub(super) async fn one<K: Kind>(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    Path((zone, id)): Path<(String, String)>,
) -> Response {
    done(read(&K::RES, &rt, &caller, &zone).and_then(|rules| {
        match rules.iter().find(|r| r["id"] == id.as_str()) {
            Some(rule) => Ok(with_etag(success(rule.clone()), &etag(&rules))),
            None => Err(no_rule(&K::RES, &zone, &id)),
        }
    }))
}

/// Where the rule `id` is in `rules`, or the 404.
fn place(rules: &[Value], res: &Resource, zone: &str, id: &str) -> Result<usize, Response> {
    rules
        .iter()
        .position(|r| r["id"] == id)
        .ok_or_else(|| no_rule(res, zone, id))
}

fn no_rule(res: &Resource, zone: &str, id: &str) -> Response {
    failure(
        StatusCode::NOT_FOUND,
        code::NO_ROUTE,
        format!("the zone `{zone}` has no {} `{id}`", res.one),
    )
}

/// What an edit does to the list of rules (as JSON, ids filled in): the new list and the
/// index of the rule it is about, if one.
type Change<'a> = Box<dyn FnOnce(&[Value]) -> Result<Edit, Response> + Send + 'a>;

/// What a request does to the list, in terms of its places before the change.
enum Edit {
    /// A new rule, last.
    Insert(Map<String, Value>),
    /// The rule at this place replaced.
    Replace(usize, Map<String, Value>),
    /// The rule at this place removed.
    Remove(usize),
    /// The rules in this order of their places.
    Reorder(Vec<usize>),
}

/// Applies `edit` to the file's tables in place, so that the rules it does not touch keep
/// their text, comments included. `before` is the list as JSON, ids filled in. Returns the
/// place of the rule the request sent (for JSON pointers into it) and what the audit log
/// records: the rule before and after, or the order of ids.
fn apply(
    res: &Resource,
    list: &mut toml_edit::ArrayOfTables,
    before: &[Value],
    edit: Edit,
) -> Result<(Option<usize>, Value, Value), Response> {
    let implicit = |i: usize| json!(format!("{}.{}", res.key, i + 1));
    Ok(match edit {
        Edit::Insert(rule) => {
            list.push(table_of(&rule)?);
            (Some(list.len() - 1), Value::Null, Value::Object(rule))
        }
        Edit::Replace(at, mut rule) => {
            let old = list.get_mut(at).expect("a place of the list");
            let had_id = old.contains_key("id");
            let mut new = table_of(&rule)?;
            if !had_id && rule.get("id") == Some(&implicit(at)) {
                // The file named it by its place; so does the new text.
                new.remove("id");
            }
            *new.decor_mut() = old.decor().clone();
            *old = new;
            rule.insert("id".into(), before[at]["id"].clone());
            (Some(at), before[at].clone(), Value::Object(rule))
        }
        Edit::Remove(at) => {
            list.remove(at);
            (None, before[at].clone(), Value::Null)
        }
        Edit::Reorder(order) => {
            let mut tables: Vec<toml_edit::Table> = list.iter().cloned().collect();
            list.clear();
            for (place, &was) in order.iter().enumerate() {
                let mut t = std::mem::take(&mut tables[was]);
                // A rule named by its place keeps its name where it goes.
                if place != was && !t.contains_key("id") {
                    t.insert(
                        "id",
                        toml_edit::value(before[was]["id"].as_str().unwrap_or("")),
                    );
                }
                list.push(t);
            }
            let ids = |order: &mut dyn Iterator<Item = usize>| {
                Value::Array(order.map(|i| before[i]["id"].clone()).collect())
            };
            (
                None,
                ids(&mut (0..before.len())),
                ids(&mut order.iter().copied()),
            )
        }
    })
}

/// Reads the rules, checks `If-Match`, applies `change`, and keeps the result: file, reload,
/// audit log. Answers the new list.
async fn edit(
    res: &Resource,
    rt: &Runtime,
    caller: &Caller,
    zone: &str,
    headers: &HeaderMap,
    done_to_it: &str,
    change: Change<'_>,
) -> Response {
    let what = if done_to_it == "reordered" {
        format!("{} reordered", res.many)
    } else {
        format!("{} {done_to_it}", res.one)
    };
    if let Err(denied) = caller.allow(Scope::FirewallEdit, Some(zone)) {
        return denied.into_response();
    }
    let _one_at_a_time = EDITING.lock().await;
    done((|| {
        let mut doc = Document::open(rt).map_err(|e| refused(e, zone, None))?;
        let before = rules_of(&mut doc, res, zone).map_err(|e| refused(e, zone, None))?;
        precondition(headers, &etag(&before))?;
        let edit = change(&before)?;
        let list = doc
            .zone_list(zone, res.key)
            .map_err(|e| refused(e, zone, None))?;
        let (changed, was, now) = apply(res, list, &before, edit)?;
        let after = rules_of(&mut doc, res, zone).map_err(|e| refused(e, zone, None))?;
        let sent = changed.map(|i| format!("{}[{i}].", res.key));
        doc.commit(rt)
            .map_err(|e| refused(e, zone, sent.as_deref()))?;
        document::audit(rt, caller.name(), &what, zone, &was, &now);
        tracing::info!(zone, caller = caller.name(), "management API: {what}");
        let tag = etag(&after);
        Ok(with_etag(success(Value::Array(after)), &tag))
    })())
}

/// `POST …/custom_rules` (or `…/rate_limits`): a new rule, last.
pub(super) async fn create<K: Kind>(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    Path(zone): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut rule = match object(&headers, body, MAX_BODY) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if !rule.contains_key("id") {
        let id = super::auth::random_hex(8).unwrap_or_else(|_| format!("r{}", fastrand::u64(..)));
        rule.insert("id".into(), json!(id));
    }
    let change: Change = Box::new(move |rules: &[Value]| {
        if rules.iter().any(|r| r["id"] == rule["id"]) {
            return Err(failure(
                StatusCode::CONFLICT,
                code::DUPLICATE,
                format!("a rule with the id {} exists already", rule["id"]),
            ));
        }
        Ok(Edit::Insert(rule))
    });
    edit(&K::RES, &rt, &caller, &zone, &headers, "created", change).await
}

/// `PUT …/custom_rules/{id}` (or `…/rate_limits/{id}`): the rule replaced (its id kept).
pub(super) async fn replace<K: Kind>(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    Path((zone, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut rule = match object(&headers, body, MAX_BODY) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if rule.get("id").is_some_and(|sent| sent != id.as_str()) {
        return failure(
            StatusCode::BAD_REQUEST,
            code::BAD_BODY,
            format!("/id: the body names another rule than the path's `{id}`"),
        );
    }
    rule.insert("id".into(), json!(id));
    let (z, i) = (zone.clone(), id.clone());
    let change: Change =
        Box::new(move |rules: &[Value]| Ok(Edit::Replace(place(rules, &K::RES, &z, &i)?, rule)));
    edit(&K::RES, &rt, &caller, &zone, &headers, "replaced", change).await
}

/// `DELETE …/custom_rules/{id}` (or `…/rate_limits/{id}`).
pub(super) async fn remove<K: Kind>(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    Path((zone, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (z, i) = (zone.clone(), id.clone());
    let change: Change =
        Box::new(move |rules: &[Value]| Ok(Edit::Remove(place(rules, &K::RES, &z, &i)?)));
    edit(&K::RES, &rt, &caller, &zone, &headers, "deleted", change).await
}

/// `PUT …/custom_rules` (or `…/rate_limits`) with `{"order": [ids]}`: the same rules in that order.
pub(super) async fn reorder<K: Kind>(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    Path(zone): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match object(&headers, body, MAX_BODY) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Ok(Reorder { order }) = serde_json::from_value::<Reorder>(Value::Object(body)) else {
        return failure(
            StatusCode::BAD_REQUEST,
            code::BAD_BODY,
            "expected {\"order\": [rule ids]} and nothing else".into(),
        );
    };
    let change: Change = Box::new(move |rules: &[Value]| {
        let mut places = Vec::with_capacity(rules.len());
        for id in &order {
            match rules.iter().position(|r| r["id"] == id.as_str()) {
                Some(at) if !places.contains(&at) => places.push(at),
                _ => {
                    return Err(failure(
                        StatusCode::BAD_REQUEST,
                        code::BAD_BODY,
                        format!("`{id}` is not a rule of the zone, or is named twice"),
                    ));
                }
            }
        }
        if places.len() != rules.len() {
            let left: Vec<String> = (0..rules.len())
                .filter(|i| !places.contains(i))
                .map(|i| rules[i]["id"].to_string())
                .collect();
            return Err(failure(
                StatusCode::BAD_REQUEST,
                code::BAD_BODY,
                format!("the order leaves out {}", left.join(", ")),
            ));
        }
        Ok(Edit::Reorder(places))
    });
    edit(&K::RES, &rt, &caller, &zone, &headers, "reordered", change).await
}
