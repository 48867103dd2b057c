//! `/client/v4/lists`: the named lists every zone's rules may use (`[[list]]`, Cloudflare's
//! account lists), read, written whole and deleted through the API, kept in the
//! configuration file like the rules (see rules.rs). A list is `{"name", "kind", "items",
//! "description"}`; its body may be up to 10 MB, Cloudflare's bound for lists. Lists belong to
//! no zone, so only a token for every zone may change them.

// As in rules.rs: early returns of whole answers on a cold path.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{Envelope, Failure, Null, code, failure, success};
use super::auth::Caller;
use super::document::{self, Document};
use super::rule_routes::IfMatch;
use super::rules::{EDITING, etag, object, precondition, refused, table_of, with_etag};
use super::schema::List;
use crate::config::api::Scope;
use crate::runtime::Runtime;

/// Largest body of a list change.
const MAX_LIST_BODY: usize = 10 * 1024 * 1024;

/// The routes, relative to `/client/v4`.
pub(super) fn routes() -> OpenApiRouter<Arc<Runtime>> {
    OpenApiRouter::new()
        .routes(routes!(all))
        .routes(routes!(one, put, remove))
        .layer(DefaultBodyLimit::max(MAX_LIST_BODY))
}

/// The path parameter of a list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the extractor as a String; this only describes it
struct ListPath {
    /// The list's name: lowercase letters, digits and `_`, at most 50.
    #[param(pattern = "^[a-z0-9_]{1,50}$")]
    name: String,
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

/// Every list.
#[utoipa::path(get, path = "/lists", tag = "lists", operation_id = "list_lists",
    responses((status = 200, description = "Every list.", body = Envelope<Vec<List>>,
        headers(("ETag" = String, description = "The lists' version.")))))]
async fn all(State(rt): State<Arc<Runtime>>, Extension(caller): Extension<Caller>) -> Response {
    match read(&rt, &caller) {
        Ok(lists) => {
            let tag = etag(&lists);
            with_etag(success(Value::Array(lists)), &tag)
        }
        Err(r) => r,
    }
}

/// One list.
#[utoipa::path(get, path = "/lists/{name}", tag = "lists", operation_id = "get_list",
    params(ListPath),
    responses(
        (status = 200, description = "The list.", body = Envelope<List>,
            headers(("ETag" = String, description = "Its version, for If-Match."))),
        (status = 404, description = "No such list (code 7003).", body = Failure),
    ))]
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

/// The list created, or replaced whole (the body may be up to 10 MB).
#[utoipa::path(put, path = "/lists/{name}", tag = "lists", operation_id = "put_list",
    params(ListPath, IfMatch),
    request_body(content = List, content_type = "application/json"),
    responses(
        (status = 200, description = "The list now.", body = Envelope<List>,
            headers(("ETag" = String, description = "Its new version."))),
        (status = 400, description = "A name, kind or item the loader refuses (1004), or a \
            body that is not a JSON object or names another list (1016).", body = Failure),
        (status = 409, description = "No configuration file to keep it in (1410).",
            body = Failure),
        (status = 412, description = "It changed since the If-Match version (1412).",
            body = Failure),
    ))]
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
    if list.get("name").is_some_and(|sent| sent != name.as_str()) {
        return failure(
            StatusCode::BAD_REQUEST,
            code::BAD_BODY,
            format!("/name: the body names another list than the path's `{name}`"),
        );
    }
    list.insert("name".into(), json!(name));
    change(&rt, &caller, &name, &headers, Some(list)).await
}

/// The list deleted (400 while a rule uses it).
#[utoipa::path(delete, path = "/lists/{name}", tag = "lists", operation_id = "delete_list",
    params(ListPath, IfMatch),
    responses(
        (status = 200, description = "Deleted; the result is null.", body = Envelope<Null>,
            headers(("ETag" = String, description = "The version of no list."))),
        (status = 400, description = "A rule uses it (1004).", body = Failure),
        (status = 404, description = "No such list (code 7003).", body = Failure),
        (status = 409, description = "No configuration file to keep it in (1410).",
            body = Failure),
        (status = 412, description = "It changed since the If-Match version (1412).",
            body = Failure),
    ))]
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
