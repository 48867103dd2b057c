//! Response phases: what happens once the answer's head is known, before it is sent, and the
//! phase that runs after the answer went out.
//!
//! A response phase sees the head about to be sent and may change it, or replace the body.

use bytes::Bytes;
use rampart_rules::ExecutionContext;

use super::{PhaseEnv, RequestContext};
use crate::errors::{Format, negotiate, origin_error_page};
use crate::message::ResponseHead;

/// What a response phase decided.
#[derive(Debug)]
pub enum ResponseDecision {
    /// Send the head (as the phase left it) and the body.
    Continue,
    /// Send the head (as the phase left it) with this body instead of the origin's.
    ReplaceBody(Bytes),
}

/// One response phase.
pub type ResponsePhase =
    fn(&mut RequestContext<'_>, &PhaseEnv, &mut ResponseHead) -> ResponseDecision;

/// The response phases for an origin's answer, in order.
pub const ORIGIN_RESPONSE_PHASES: [ResponsePhase; 1] = [custom_error_page];

/// Custom error pages: an origin 4xx or 5xx gets the zone's page for its status instead of
/// its body, when the client takes HTML; the status and the fields that matter stay.
pub fn custom_error_page(
    ctx: &mut RequestContext<'_>,
    _env: &PhaseEnv,
    head: &mut ResponseHead,
) -> ResponseDecision {
    let status = head.status();
    if status < 400 || head.is_upgrade() {
        return ResponseDecision::Continue;
    }
    let Some(zone) = ctx.zone.clone() else {
        return ResponseDecision::Continue;
    };
    let Some(template) = zone.config.security.error_pages.for_origin(status) else {
        return ResponseDecision::Continue;
    };
    if negotiate(ctx.head.header("accept")) != Format::Html {
        return ResponseDecision::Continue;
    }
    ResponseDecision::ReplaceBody(origin_error_page(head, template, ctx.ray_id, ctx.client_ip))
}

/// After the answer: counts the rate-limit hits whose counting expression matches its
/// `status` (499 when the client left).
pub fn after_response(ctx: &RequestContext<'_>, env: &PhaseEnv, status: u16) {
    if ctx.deferred_hits.is_empty() {
        return;
    }
    let fields = ctx.rules.fields();
    fields.set_response_code(status);
    // A context of its own: the response code was not known when the request's was filled.
    let exec = ExecutionContext::new(crate::config::security::scheme(), fields);
    super::rate_limit::count_after_response(ctx, &exec, env);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::OriginFields;
    use crate::pipeline::testing::{TestRequest, zone_config};
    use rampart_http::{Limits, Parse};

    fn origin_head(raw: &str) -> ResponseHead {
        match rampart_http::parse_response_head(raw.as_bytes(), &Limits::default()) {
            Ok(Parse::Complete((h, _))) => {
                ResponseHead::relayed(h.status(), OriginFields::Http1(h))
            }
            other => panic!("{other:?}"),
        }
    }

    fn page_config() -> String {
        let dir = std::env::temp_dir().join(format!("rampart-page-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("4xx.html");
        std::fs::write(&file, "<p>::ERROR_CODE:: ::RAY_ID::</p>").unwrap();
        zone_config(&format!(
            "[[zone.error_page]]\nfor = \"4xx\"\nfile = \"{}\"\n",
            file.display()
        ))
    }

    #[test]
    fn an_origin_error_gets_the_page_for_html_clients_and_keeps_its_fields() {
        let t = TestRequest::new(
            &page_config(),
            "GET / HTTP/1.1\r\nHost: a.test\r\nAccept: text/html\r\n\r\n",
            "192.0.2.1",
        );
        t.at(0, |ctx, env| {
            crate::pipeline::route::route(ctx, env);
            let mut head = origin_head("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\nContent-Type: text/plain\r\nETag: \"e\"\r\nContent-Length: 4\r\n\r\n");
            let ResponseDecision::ReplaceBody(body) = custom_error_page(ctx, env, &mut head) else {
                panic!("the page replaces the body");
            };
            let expected = format!("<p>401 {}</p>", ctx.ray_id.as_str());
            assert_eq!(body, expected.as_bytes());
            assert_eq!(head.get("www-authenticate"), Some(&b"Basic"[..]));
            assert_eq!(head.get("content-type"), Some(&b"text/html; charset=utf-8"[..]));
            assert!(!head.contains("etag"), "the origin's validators described its own body");
            assert_eq!(head.content_length, Some(expected.len() as u64));
        });
    }

    #[test]
    fn json_clients_and_successes_keep_the_origin_s_body() {
        let json = TestRequest::new(
            &page_config(),
            "GET / HTTP/1.1\r\nHost: a.test\r\nAccept: application/json\r\n\r\n",
            "192.0.2.1",
        );
        json.at(0, |ctx, env| {
            crate::pipeline::route::route(ctx, env);
            let mut head = origin_head("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            assert!(matches!(
                custom_error_page(ctx, env, &mut head),
                ResponseDecision::Continue
            ));
        });
        let html = json.another("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", "192.0.2.1");
        html.at(0, |ctx, env| {
            crate::pipeline::route::route(ctx, env);
            let mut head = origin_head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            assert!(matches!(
                custom_error_page(ctx, env, &mut head),
                ResponseDecision::Continue
            ));
        });
    }
}
