//! The routes of a zone's rules (`/zones/{zone}/custom_rules`, `…/rate_limits`,
//! `…/ip_access_rules`), each with its OpenAPI description. `utoipa` describes a handler by
//! its function, so each kind of rule gets its own thin functions over rules.rs's generic
//! handlers.

use std::sync::Arc;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::runtime::Runtime;

/// The routes, relative to `/client/v4`.
pub(super) fn routes() -> OpenApiRouter<Arc<Runtime>> {
    OpenApiRouter::new()
        .routes(routes!(
            custom_rules::list,
            custom_rules::create,
            custom_rules::reorder
        ))
        .routes(routes!(
            custom_rules::one,
            custom_rules::replace,
            custom_rules::remove
        ))
        .routes(routes!(
            rate_limits::list,
            rate_limits::create,
            rate_limits::reorder
        ))
        .routes(routes!(
            rate_limits::one,
            rate_limits::replace,
            rate_limits::remove
        ))
        .routes(routes!(
            ip_access_rules::list,
            ip_access_rules::create,
            ip_access_rules::reorder
        ))
        .routes(routes!(
            ip_access_rules::one,
            ip_access_rules::replace,
            ip_access_rules::remove
        ))
}

/// The handlers of one kind of rule, each with its OpenAPI description: `utoipa` describes
/// a handler by its function, so each kind gets its own thin functions over the generic ones
/// below. `$schema` is the rule's type in schema.rs; the literals are the paths, the tag and
/// the operation ids' suffix.
macro_rules! rule_api {
    ($module:ident, $kind:ident, $schema:ident, $list:tt, $one:tt, $tag:tt,
     [$list_op:tt, $one_op:tt, $create_op:tt, $replace_op:tt, $remove_op:tt, $reorder_op:tt]) => {
        pub(super) mod $module {
            use std::sync::Arc;

            use axum::body::Bytes;
            use axum::extract::rejection::BytesRejection;
            use axum::extract::{Extension, Path, State};
            use axum::http::HeaderMap;
            use axum::response::Response;

            use super::IfMatch;
            use crate::admin::api::{Envelope, Failure, ZonePath};
            use crate::admin::auth::Caller;
            use crate::admin::rules::{self, $kind};
            use crate::admin::schema::{$schema, Reorder};
            use crate::runtime::Runtime;

            #[utoipa::path(get, path = $list, tag = $tag, operation_id = $list_op,
                params(ZonePath),
                responses(
                    (status = 200, description = "The zone's rules, in the order they run.",
                        body = Envelope<Vec<$schema>>,
                        headers(("ETag" = String, description = "The list's version, for If-Match."))),
                    (status = 404, description = "No such zone (code 7003).", body = Failure),
                ))]
            pub(crate) async fn list(
                rt: State<Arc<Runtime>>,
                caller: Extension<Caller>,
                zone: Path<String>,
            ) -> Response {
                rules::list::<$kind>(rt, caller, zone).await
            }

            #[utoipa::path(get, path = $one, tag = $tag, operation_id = $one_op,
                params(ZonePath, ("id" = String, Path, description = "The rule's id.")),
                responses(
                    (status = 200, description = "The rule.", body = Envelope<$schema>,
                        headers(("ETag" = String, description = "The list's version, for If-Match."))),
                    (status = 404, description = "No such zone or rule (code 7003).", body = Failure),
                ))]
            pub(crate) async fn one(
                rt: State<Arc<Runtime>>,
                caller: Extension<Caller>,
                path: Path<(String, String)>,
            ) -> Response {
                rules::one::<$kind>(rt, caller, path).await
            }

            #[utoipa::path(post, path = $list, tag = $tag, operation_id = $create_op,
                params(ZonePath, IfMatch),
                request_body(content = $schema, content_type = "application/json"),
                responses(
                    (status = 200, description = "Made, last: the zone's rules now.",
                        body = Envelope<Vec<$schema>>,
                        headers(("ETag" = String, description = "The list's new version."))),
                    (status = 400, description = "The rule is not valid (code 1004, with a JSON \
                        pointer to the field) or the body is not a JSON object (1016).",
                        body = Failure),
                    (status = 404, description = "No such zone (code 7003).", body = Failure),
                    (status = 409, description = "A rule with that id exists (1409), or rampart \
                        runs without a configuration file to keep it in (1410).", body = Failure),
                    (status = 412, description = "The rules changed since the If-Match version \
                        (1412).", body = Failure),
                ))]
            pub(crate) async fn create(
                rt: State<Arc<Runtime>>,
                caller: Extension<Caller>,
                zone: Path<String>,
                headers: HeaderMap,
                body: Result<Bytes, BytesRejection>,
            ) -> Response {
                rules::create::<$kind>(rt, caller, zone, headers, body).await
            }

            #[utoipa::path(put, path = $one, tag = $tag, operation_id = $replace_op,
                params(ZonePath, ("id" = String, Path, description = "The rule's id."), IfMatch),
                request_body(content = $schema, content_type = "application/json"),
                responses(
                    (status = 200, description = "Replaced: the zone's rules now.",
                        body = Envelope<Vec<$schema>>,
                        headers(("ETag" = String, description = "The list's new version."))),
                    (status = 400, description = "The rule is not valid (code 1004), its body \
                        names another id, or it is not a JSON object (1016).", body = Failure),
                    (status = 404, description = "No such zone or rule (code 7003).", body = Failure),
                    (status = 409, description = "No configuration file to keep it in (1410).",
                        body = Failure),
                    (status = 412, description = "The rules changed since the If-Match version \
                        (1412).", body = Failure),
                ))]
            pub(crate) async fn replace(
                rt: State<Arc<Runtime>>,
                caller: Extension<Caller>,
                path: Path<(String, String)>,
                headers: HeaderMap,
                body: Result<Bytes, BytesRejection>,
            ) -> Response {
                rules::replace::<$kind>(rt, caller, path, headers, body).await
            }

            #[utoipa::path(delete, path = $one, tag = $tag, operation_id = $remove_op,
                params(ZonePath, ("id" = String, Path, description = "The rule's id."), IfMatch),
                responses(
                    (status = 200, description = "Deleted: the zone's rules now.",
                        body = Envelope<Vec<$schema>>,
                        headers(("ETag" = String, description = "The list's new version."))),
                    (status = 400, description = "The zone's rules without it do not load (1004).",
                        body = Failure),
                    (status = 404, description = "No such zone or rule (code 7003).", body = Failure),
                    (status = 409, description = "No configuration file to keep it in (1410).",
                        body = Failure),
                    (status = 412, description = "The rules changed since the If-Match version \
                        (1412).", body = Failure),
                ))]
            pub(crate) async fn remove(
                rt: State<Arc<Runtime>>,
                caller: Extension<Caller>,
                path: Path<(String, String)>,
                headers: HeaderMap,
            ) -> Response {
                rules::remove::<$kind>(rt, caller, path, headers).await
            }

            #[utoipa::path(put, path = $list, tag = $tag, operation_id = $reorder_op,
                params(ZonePath, IfMatch),
                request_body(content = Reorder, content_type = "application/json"),
                responses(
                    (status = 200, description = "Reordered: the zone's rules now.",
                        body = Envelope<Vec<$schema>>,
                        headers(("ETag" = String, description = "The list's new version."))),
                    (status = 400, description = "The order is not every rule once (1016).",
                        body = Failure),
                    (status = 404, description = "No such zone (code 7003).", body = Failure),
                    (status = 409, description = "No configuration file to keep it in (1410).",
                        body = Failure),
                    (status = 412, description = "The rules changed since the If-Match version \
                        (1412).", body = Failure),
                ))]
            pub(crate) async fn reorder(
                rt: State<Arc<Runtime>>,
                caller: Extension<Caller>,
                zone: Path<String>,
                headers: HeaderMap,
                body: Result<Bytes, BytesRejection>,
            ) -> Response {
                rules::reorder::<$kind>(rt, caller, zone, headers, body).await
            }
        }
    };
}

rule_api!(
    custom_rules,
    CustomRules,
    CustomRule,
    "/zones/{zone}/custom_rules",
    "/zones/{zone}/custom_rules/{id}",
    "custom rules",
    [
        "list_custom_rules",
        "get_custom_rule",
        "create_custom_rule",
        "replace_custom_rule",
        "delete_custom_rule",
        "reorder_custom_rules"
    ]
);
rule_api!(
    rate_limits,
    RateLimits,
    RateLimitRule,
    "/zones/{zone}/rate_limits",
    "/zones/{zone}/rate_limits/{id}",
    "rate limiting rules",
    [
        "list_rate_limits",
        "get_rate_limit",
        "create_rate_limit",
        "replace_rate_limit",
        "delete_rate_limit",
        "reorder_rate_limits"
    ]
);
rule_api!(
    ip_access_rules,
    IpAccessRules,
    IpAccessRule,
    "/zones/{zone}/ip_access_rules",
    "/zones/{zone}/ip_access_rules/{id}",
    "IP access rules",
    [
        "list_ip_access_rules",
        "get_ip_access_rule",
        "create_ip_access_rule",
        "replace_ip_access_rule",
        "delete_ip_access_rule",
        "reorder_ip_access_rules"
    ]
);

/// `If-Match`, on every change: the version (`ETag`) the change was made against.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read from the headers by `precondition`; this only describes it
pub(super) struct IfMatch {
    /// The `ETag` last read (or `*`): the change is made only while it is still current, 412
    /// otherwise.
    #[param(rename = "If-Match")]
    if_match: Option<String>,
}
