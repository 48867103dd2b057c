//! The API's OpenAPI 3.1 document, served at `/client/v4/openapi.json`.
//!
//! Each handler describes itself (`#[utoipa::path]`, its types `ToSchema`), and the routes
//! are registered together with those descriptions (`utoipa_axum`'s `routes!`), so the
//! document lists exactly what is routed. What every guarded route may answer, whatever it
//! is (401 and 403 from the tokens, 429 from the API's limits, 413 and 415 for a body), is
//! added here once, as [`auth::guard`](super::auth::guard) and the body readers do it once.

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, Content, HttpMethod, OpenApi as Document, Ref, RefOr, Required,
    ResponseBuilder, SecurityRequirement, header::HeaderBuilder,
};

use super::api::Failure;

/// What the document says of the API as a whole.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "rampart management API",
        description = "Cloudflare's v4 shape: every answer is the envelope `{success, errors, \
            messages, result}`. Tokens are `[[api_token]]`s of the configuration \
            (`rampart token create`), sent as `Authorization: Bearer <token>`. A change to \
            rules, lists or settings is checked by the configuration's loader, applied to new \
            requests at once, and written to the configuration file, comments kept.",
    ),
    servers((url = "/client/v4")),
    tags(
        (name = "tokens", description = "The token a request comes with."),
        (name = "zones", description = "Zones and their settings."),
        (name = "custom rules", description = "`[[zone.custom_rule]]`."),
        (name = "rate limiting rules", description = "`[[zone.rate_limit]]`."),
        (name = "IP access rules", description = "`[[zone.ip_access_rule]]`."),
        (name = "lists", description = "`[[list]]`: named lists every zone's rules may use."),
        (name = "cache", description = "The edge cache."),
        (name = "analytics", description = "Per-minute rollups of every request."),
    )
)]
pub(super) struct Base;

/// The name of the bearer token scheme in the document.
const TOKEN: &str = "api_token";

/// `routed`, the document of the routes as registered, made whole: the token scheme, and on
/// every operation the answers the guard and the body readers give.
pub(super) fn finish(mut doc: Document) -> Document {
    let components = doc.components.take().unwrap_or_default();
    let mut components = ComponentsBuilder::from(components)
        .security_scheme(
            TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token of the configuration."))
                    .build(),
            ),
        )
        .build();
    let failure = failure_schema_ref(&mut components);
    doc.components = Some(components);
    doc.security = Some(vec![SecurityRequirement::new::<_, _, &str>(TOKEN, [])]);
    let answer = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content("application/json", Content::new(Some(failure.clone())))
    };
    for item in doc.paths.paths.values_mut() {
        for method in [
            HttpMethod::Get,
            HttpMethod::Put,
            HttpMethod::Post,
            HttpMethod::Delete,
            HttpMethod::Patch,
        ] {
            let operation = match method {
                HttpMethod::Get => item.get.as_mut(),
                HttpMethod::Put => item.put.as_mut(),
                HttpMethod::Post => item.post.as_mut(),
                HttpMethod::Delete => item.delete.as_mut(),
                HttpMethod::Patch => item.patch.as_mut(),
                _ => None,
            };
            let Some(operation) = operation else { continue };
            let mut add = |status: &str, response: ResponseBuilder| {
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::T(response.build()));
            };
            let header = |description: &str| {
                HeaderBuilder::new()
                    .schema(Some(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::Type::String),
                    ))
                    .description(Some(description))
                    .build()
            };
            add(
                "401",
                answer(
                    "No token, or one the configuration does not have (code 10000); without \
                     tokens configured, a client that is not on loopback.",
                )
                .header(
                    "WWW-Authenticate",
                    header("`Bearer realm=\"rampart\"`, with RFC 6750's `error`."),
                ),
            );
            add(
                "403",
                answer("The token lacks the scope, or may not act on the zone (code 10000)."),
            );
            add(
                "429",
                answer(
                    "Over 200 requests a second from the address, or 1,200 in 5 minutes with \
                     the token, which is then refused for the rest of the 5 minutes (code 971).",
                )
                .header(
                    "Retry-After",
                    header("Seconds until a request is taken again."),
                )
                .header(
                    "RateLimit",
                    header("The limit's state (IETF RateLimit fields)."),
                )
                .header(
                    "RateLimit-Policy",
                    header("The limit (IETF RateLimit fields)."),
                ),
            );
            if let Some(body) = operation.request_body.as_mut() {
                if let RefOr::T(body) = body {
                    body.required = Some(Required::True);
                }
                add(
                    "400",
                    answer("The body is not a JSON object of this shape (code 1016)."),
                );
                add(
                    "413",
                    answer("The body is over 1 MB (10 MB for a list) (code 1015)."),
                );
                add(
                    "415",
                    answer("The body is not sent as `application/json` (code 6003)."),
                );
            }
        }
    }
    doc
}

/// A reference to the failure envelope's schema, which the handlers' own answers have put
/// in `components` already (added if not).
fn failure_schema_ref(
    components: &mut utoipa::openapi::Components,
) -> RefOr<utoipa::openapi::Schema> {
    use utoipa::{PartialSchema, ToSchema};
    let name = Failure::name().to_string();
    components
        .schemas
        .entry(name.clone())
        .or_insert_with(Failure::schema);
    RefOr::Ref(Ref::from_schema_name(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> serde_json::Value {
        let (_, doc) = super::super::api::routes().split_for_parts();
        serde_json::to_value(finish(doc)).unwrap()
    }

    #[test]
    fn every_operation_answers_the_guards_statuses_and_names_its_own() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() >= 15, "{}", paths.len());
        let mut ids = std::collections::HashSet::new();
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_string()), "{id} twice");
                let responses = op["responses"].as_object().unwrap();
                for status in ["200", "401", "403", "429"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path}: no {status}"
                    );
                }
                if op.get("requestBody").is_some() {
                    for status in ["400", "413", "415"] {
                        assert!(
                            responses.contains_key(status),
                            "{method} {path}: no {status}"
                        );
                    }
                }
            }
        }
        assert!(paths["/zones/{zone}/custom_rules/{id}"]["delete"].is_object());
        assert!(paths["/zones/{zone}/rate_limits"]["put"].is_object());
        assert_eq!(
            doc["components"]["securitySchemes"][TOKEN]["scheme"],
            "bearer"
        );
    }
}
