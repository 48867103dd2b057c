//! `/client/v4/lists`: the named lists every zone's rules may use (`[[list]]`, Cloudflare's
//! account lists), read, written whole and deleted through the API, kept in the
//! configuration file like the rules (see rules.rs). A list is `{"name", "kind", "items",
//! "description"}`; its body may be up to 10 MB, Cloudflare's bound for lists. Lists belong to
//! no zone, so only a token for every zone may change them.

// As in rules.rs: early returns of whole answers on a cold path.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::api::{code, failure, success};
use super::auth::Caller;
use super::document::{self, Document};
use super::rules::{EDITING, etag, object, precondition, refused, table_of, with_etag};
use crate::config::api::Scope;
use crate::runtime::Runtime;

/// Largest body of a list change.
const MAX_LIST_BODY: usize = 10 * 1024 * 1024;

/// The routes, relative to `/client/v4`.
pub(super) fn routes() -> Router<Arc<Runtime>> {
    Router::new()
        .route("/lists", get(all))
        .route("/lists/{name}", get(one).put(put).delete(remove))
        .layer(DefaultBodyLimit::max(MAX_LIST_BODY))
}

/// Every list of the file, as JSON.
fn lists_of(doc: &mut Document) -> Result<Vec<Value>, Response> {
    let list = doc.root_list("list").map_err(|e| refused(e, "", None))?;
    Ok(list.iter().map(document::table_json).collect())
}

/// Lists belong to every zone: a token limited to some zones may read them but not change
/// them.
fn may_edit(caller: &Caller) -> Result<(), Response> {
    caller
        .allow_every_zone(Scope::FirewallEdit)
        .map_err(IntoResponse::into_response)
}

fn read(rt: &Runtime, caller: &Caller) -> Result<Vec<Value>, Response> {
    caller
        .allow(Scope::FirewallRead, None)
        .map_err(IntoResponse::into_response)?;
    let mut doc = Document::open(rt).map_err(|e| refused(e, "", None))?;
    lists_of(&mut doc)
}

fn no_list(name: &str) -> Response {
    failure(
        StatusCode::NOT_FOUND,
        code::NO_ROUTE,
        format!("there is no list `{name}`"),
    )
}

/// `GET /lists`.
async fn all(State(rt): State<Arc<Runtime>>, Extension(caller): Extension<Caller>) -> Response {
    match read(&rt, &caller) {
        Ok(lists) => {
            let tag = etag(&lists);
            with_etag(success(Value::Array(lists)), &tag)
        }
        Err(r) => r,
    }
}

/// `GET /lists/{name}`.
async fn one(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    let lists = match read(&rt, &caller) {
        Ok(l) => l,
        Err(r) => return r,
    };
    match lists.iter().find(|l| l["name"] == name.as_str()) {
        Some(list) => with_etag(success(list.clone()), &etag(&list)),
        None => no_list(&name),
    }
}

/// `PUT /lists/{name}`: the list created, or replaced whole.
async fn put(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut list = match may_edit(&caller).and_then(|()| object(&headers, body, MAX_LIST_BODY)) {
        Ok(l) => l,
        Err(r) => return r,
    };
    list.insert("name".into(), json!(name));
    change(&rt, &caller, &name, &headers, Some(list)).await
}

/// `DELETE /lists/{name}`.
async fn remove(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = may_edit(&caller) {
        return r;
    }
    change(&rt, &caller, &name, &headers, None).await
}

/// Puts `list` in place of the list `name` (`None`: removes it), with `If-Match` against the
/// list's own tag; the loader checks the file (a rule naming a removed list is its error).
async fn change(
    rt: &Runtime,
    caller: &Caller,
    name: &str,
    headers: &HeaderMap,
    list: Option<serde_json::Map<String, Value>>,
) -> Response {
    let _one_at_a_time = EDITING.lock().await;
    let answer = (|| {
        let mut doc = Document::open(rt).map_err(|e| refused(e, "", None))?;
        let lists = lists_of(&mut doc)?;
        let at = lists.iter().position(|l| l["name"] == name);
        let before = at.map_or(Value::Null, |i| lists[i].clone());
        precondition(headers, &etag(&before))?;
        let tables = doc.root_list("list").map_err(|e| refused(e, "", None))?;
        let sent = match (&list, at) {
            (None, None) => return Err(no_list(name)),
            (None, Some(i)) => {
                tables.remove(i);
                None
            }
            (Some(l), at) => {
                let table = table_of(l)?;
                match at {
                    Some(i) => {
                        let old = tables.get_mut(i).expect("a place of the list");
                        let mut table = table;
                        *table.decor_mut() = old.decor().clone();
                        *old = table;
                        Some(format!("list[{i}]."))
                    }
                    None => {
                        tables.push(table);
                        Some(format!("list[{}].", tables.len() - 1))
                    }
                }
            }
        };
        doc.commit(rt)
            .map_err(|e| refused(e, "", sent.as_deref()))?;
        let after = list.map_or(Value::Null, Value::Object);
        let what = match (&before, &after) {
            (_, Value::Null) => "list deleted",
            (Value::Null, _) => "list created",
            _ => "list replaced",
        };
        document::audit(rt, caller.name(), what, "", &before, &after);
        tracing::info!(
            list = name,
            caller = caller.name(),
            "management API: {what}"
        );
        let tag = etag(&after);
        Ok(with_etag(success(after), &tag))
    })();
    answer.unwrap_or_else(|e| e)
}
