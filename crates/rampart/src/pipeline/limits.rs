//! Limits and method phases: what is refused before anything else looks at the request.

use rampart_http::BodyFraming;

use super::{Decision, PhaseEnv, RequestContext};
use crate::config::request::Underscores;
use crate::errors::{EdgeError, Rejection};

/// How a body's size over the limit became known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodySize {
    /// Its Content-Length.
    ContentLength,
    /// A chunk size, before the chunk's data arrived.
    Chunked,
    /// Counted as it arrived.
    Counted,
}

/// The 413 for a body of `size` bytes over `max`: the one place that says so, whichever way
/// the body's size became known.
pub fn body_too_large(size: u64, max: u64, known: BodySize) -> Rejection {
    let detail = match known {
        BodySize::ContentLength => format!(
            "the declared Content-Length of {size} bytes exceeds this site's limit of {max} bytes"
        ),
        BodySize::Chunked => format!(
            "the chunk sizes declare at least {size} bytes of body, over this site's limit of {max} bytes"
        ),
        BodySize::Counted => format!("the request body grew past this site's limit of {max} bytes"),
    };
    Rejection::explained(EdgeError::PayloadTooLarge, detail)
}

/// Limits phase: a declared body over the limit is refused before it is read (and before
/// any `100 Continue`). A body of unknown length is counted as it streams (the session
/// answers 413 the moment it passes the limit). A zone with `underscores_in_headers =
/// "reject"` refuses a header name with `_` here.
pub fn limits(ctx: &mut RequestContext<'_>, _env: &PhaseEnv) -> Decision {
    let max = ctx.generation.config.limits.max_body_bytes;
    if let BodyFraming::ContentLength(n) = ctx.head.body()
        && n > max
    {
        return Decision::Reject(body_too_large(n, max, BodySize::ContentLength));
    }
    let refuses_underscores = ctx
        .zone
        .as_ref()
        .is_some_and(|z| z.config.request.underscores_in_headers == Underscores::Reject);
    if refuses_underscores
        && let Some((name, _)) = ctx.head.headers().find(|(n, _)| n.contains('_'))
    {
        return Decision::Reject(Rejection::explained(
            EdgeError::BadRequest,
            format!(
                "the header field name `{name}` has an underscore, which this site refuses (underscores_in_headers = \"reject\")"
            ),
        ));
    }
    Decision::Continue
}

/// Method phase: rampart is a reverse proxy and does not open CONNECT tunnels.
pub fn method(ctx: &mut RequestContext<'_>, _env: &PhaseEnv) -> Decision {
    if ctx.head.method() == "CONNECT" {
        return Decision::Reject(Rejection::explained(
            EdgeError::NotImplemented,
            "this edge is a reverse proxy and does not open CONNECT tunnels",
        ));
    }
    Decision::Continue
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing::{TestRequest, zone_config};

    fn status(raw: &str) -> Option<u16> {
        let toml = format!("[limits]\nmax_body_bytes = 10\n{}", zone_config(""));
        let t = TestRequest::new(&toml, raw, "192.0.2.1");
        t.at(0, |ctx, env| match (limits(ctx, env), method(ctx, env)) {
            (Decision::Reject(r), _) | (_, Decision::Reject(r)) => Some(r.status()),
            _ => None,
        })
    }

    #[test]
    fn a_declared_body_at_the_limit_passes_and_one_byte_more_is_413() {
        let post =
            |n: u32| format!("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: {n}\r\n\r\n");
        assert_eq!(status(&post(10)), None);
        assert_eq!(status(&post(11)), Some(413));
        // Chunked bodies are counted as they stream, by the session.
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"),
            None
        );
    }

    #[test]
    fn connect_is_not_implemented() {
        assert_eq!(
            status("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n"),
            Some(501)
        );
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"), None);
    }

    #[test]
    fn the_413_detail_says_how_the_size_became_known() {
        assert!(
            body_too_large(11, 10, BodySize::ContentLength)
                .detail
                .contains("declared Content-Length of 11")
        );
        assert!(
            body_too_large(11, 10, BodySize::Counted)
                .detail
                .contains("grew past")
        );
        assert_eq!(body_too_large(11, 10, BodySize::Counted).status(), 413);
    }
}
