//! The analytics dashboard at `/` on the admin listener: one page of our own, embedded in the
//! binary (no CDN, no third-party script), that signs in with an API token and draws the
//! analytics API's answers as SVG. The page holds no data: every number comes from
//! `/client/v4/zones/{zone}/analytics` with the token, and the token never leaves the browser
//! but in that `Authorization` field.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::errors::EdgeError;

const PAGE: &str = include_str!("dashboard.html");

/// `GET /`: the page, with the error catalogue (code → status and title) filled in for the
/// 4xx-by-cause table.
pub(super) async fn page() -> Response {
    // Made once: the page and the catalogue never change while the process runs.
    static BODY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let mut catalogue = Map::new();
        for e in EdgeError::ALL {
            let entry = e.entry();
            let code = entry.code.unwrap_or(entry.status);
            catalogue.insert(code.to_string(), json!([entry.status, entry.title]));
        }
        PAGE.replace("/*CATALOGUE*/{}", &Value::Object(catalogue).to_string())
    });
    let body = BODY.as_str();
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; \
                 style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
