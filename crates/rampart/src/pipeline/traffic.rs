//! Traffic rules: the redirect phase (`always_use_https`, then `[[zone.redirect_rule]]`), the
//! request header phase (`[[zone.request_header_rule]]`, applied to what the origin gets),
//! and the response header step (`hsts`, then `[[zone.response_header_rule]]`) that every
//! answer of a zone goes through, relayed, cached or generated.

use std::borrow::Cow;
use std::io::Write as _;

use bytes::Bytes;
use http::HeaderValue;
use rampart_rules::ExecutionContext;

use super::{Decision, PhaseEnv, RequestContext};
use crate::config::traffic::{FieldValue, HeaderOp, HeaderRule, RedirectRule};
use crate::message::{Response, ResponseHead};
use crate::upstream::FieldEdits;

/// The path from which ACME HTTP-01 challenges are answered over plain HTTP: never
/// redirected to https, as a certificate authority asks before the site has a certificate.
const ACME_CHALLENGE: &str = crate::acme::HTTP01_PREFIX;

/// ACME HTTP-01: a token rampart's own order is waiting on is answered with its key
/// authorization before any other phase (IP rules, custom rules and rate limits must not
/// stop the CA). Other tokens go on to the origin, which may run its own ACME client.
pub fn acme_challenge(ctx: &mut RequestContext<'_>, _env: &PhaseEnv) -> Decision {
    let Some(token) = ctx.head.path().strip_prefix(ACME_CHALLENGE) else {
        return Decision::Continue;
    };
    if !matches!(ctx.head.method(), "GET" | "HEAD") {
        return Decision::Continue;
    }
    match ctx.generation.acme.http01(token) {
        Some(answer) => Decision::Respond(Box::new(Response::full(
            200,
            "application/octet-stream",
            answer,
        ))),
        None => Decision::Continue,
    }
}

/// Redirects: a plain-HTTP request to a zone with `always_use_https` goes to https (301 for
/// GET and HEAD, 308 for other methods, which must not become GET); otherwise the first
/// matching redirect rule answers.
pub fn redirect(ctx: &mut RequestContext<'_>, _env: &PhaseEnv) -> Decision {
    let Some(zone) = ctx.zone.clone() else {
        return Decision::Continue;
    };
    let traffic = &zone.config.traffic;
    if traffic.always_use_https && !ctx.tls && !ctx.head.path().starts_with(ACME_CHALLENGE) {
        let status = if matches!(ctx.head.method(), "GET" | "HEAD") {
            301
        } else {
            308
        };
        let location = https_location(ctx);
        return Decision::Respond(Box::new(redirect_response(status, location)));
    }
    let Some(rule) = ctx.rules.first_match(&traffic.redirects) else {
        return Decision::Continue;
    };
    let rule = rule.action();
    match rule_location(ctx, rule) {
        Some(location) => Decision::Respond(Box::new(redirect_response(rule.status, location))),
        None => {
            tracing::debug!(
                ray_id = ctx.ray_id.as_str(),
                rule = rule.id,
                "redirect rule matched, but its target expression gave no value: not redirected"
            );
            Decision::Continue
        }
    }
}

/// `https://` the request's host, on the TLS listener's port, with its path and query.
fn https_location(ctx: &RequestContext<'_>) -> Bytes {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"https://");
    out.extend_from_slice(ctx.head.host_name().unwrap_or("").as_bytes());
    let tls_port = ctx
        .generation
        .config
        .server
        .tls_listen
        .first()
        .map_or(443, |a| a.port());
    if tls_port != 443 {
        let _ = write!(out, ":{tls_port}");
    }
    out.extend_from_slice(ctx.head.path_and_query().as_bytes());
    Bytes::from(out)
}

/// The Location a redirect rule sends: its target (bytes a URL cannot hold
/// percent-encoded), with the request's query appended when the rule preserves it.
fn rule_location(ctx: &RequestContext<'_>, rule: &RedirectRule) -> Option<Bytes> {
    let target = value(&rule.target, ctx.rules.exec())?;
    if target.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(target.len() + 16);
    for &b in target.iter() {
        if b.is_ascii_graphic() {
            out.push(b);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    if rule.preserve_query
        && let Some(q) = ctx.head.query()
    {
        out.push(if out.contains(&b'?') { b'&' } else { b'?' });
        out.extend_from_slice(q.as_bytes());
    }
    Some(Bytes::from(out))
}

/// A redirect: `status`, Location, and the short hypertext note RFC 9110 §15.4 asks for.
fn redirect_response(status: u16, location: Bytes) -> Response {
    let reason = rampart_http::canonical_reason(status);
    let body = format!(
        "<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1></body></html>\n"
    );
    let mut response = Response::full(status, "text/html; charset=utf-8", body);
    response.head.append(http::header::LOCATION, location);
    response
}

/// The value of `v` for the request: the static bytes, or the expression's value.
fn value<'c>(v: &'c FieldValue, exec: &'c ExecutionContext<'_>) -> Option<Cow<'c, [u8]>> {
    match v {
        FieldValue::Static(b) => Some(Cow::Borrowed(b)),
        FieldValue::Expression(e) => e.evaluate(exec),
    }
}

/// Request header rules: every matching rule's changes, in order, to the fields the origin
/// gets. A value whose expression gives nothing, or a value that is not a valid field
/// value, leaves the field as it was.
pub fn request_headers(ctx: &mut RequestContext<'_>, _env: &PhaseEnv) -> Decision {
    let Some(zone) = ctx.zone.clone() else {
        return Decision::Continue;
    };
    let rules = &zone.config.traffic.request_headers;
    if rules.is_empty() {
        return Decision::Continue;
    }
    let exec = ctx.rules.exec();
    let mut edits = FieldEdits::default();
    for rule in rules.matches(exec) {
        for op in &rule.action().ops {
            match op {
                HeaderOp::Remove(name) => edits.remove(name),
                HeaderOp::Set(name, v) => {
                    if let Some(v) = field_value(v, exec) {
                        edits.remove(name);
                        edits.added.push((name.clone(), v));
                    }
                }
                HeaderOp::Add(name, v) => {
                    if let Some(v) = field_value(v, exec) {
                        edits.added.push((name.clone(), v));
                    }
                }
            }
        }
    }
    ctx.origin_edits = edits;
    Decision::Continue
}

/// A rule's value as a field value, when it is one.
fn field_value(v: &FieldValue, exec: &ExecutionContext<'_>) -> Option<Bytes> {
    let bytes = value(v, exec)?;
    HeaderValue::from_bytes(&bytes).ok()?;
    Some(Bytes::copy_from_slice(&bytes))
}

/// The step every answer of a zone goes through before its head is sent: over HTTPS the
/// zone's `hsts`, then every matching response header rule, in order. The rules see the
/// request's fields and `http.response.code`.
pub fn response_headers(ctx: &RequestContext<'_>, head: &mut ResponseHead) {
    let Some(zone) = &ctx.zone else {
        return;
    };
    let traffic = &zone.config.traffic;
    if ctx.tls
        && let Some(hsts) = &traffic.hsts
    {
        let name = http::header::STRICT_TRANSPORT_SECURITY;
        head.remove(&name);
        head.append(name, Bytes::copy_from_slice(hsts.value.as_bytes()));
    }
    if traffic.response_headers.is_empty() {
        return;
    }
    let fields = ctx.rules.fields();
    fields.set_response_code(head.status());
    // A context of its own: the response code was not known when the request's was made.
    let exec = ExecutionContext::new(crate::config::security::scheme(), fields);
    for rule in traffic.response_headers.matches(&exec) {
        apply(rule.action(), &exec, head);
    }
}

fn apply(rule: &HeaderRule, exec: &ExecutionContext<'_>, head: &mut ResponseHead) {
    for op in &rule.ops {
        match op {
            HeaderOp::Remove(name) => head.remove(name),
            HeaderOp::Set(name, v) => {
                if let Some(v) = field_value(v, exec) {
                    head.remove(name);
                    head.append(name.clone(), v);
                }
            }
            HeaderOp::Add(name, v) => {
                if let Some(v) = field_value(v, exec) {
                    head.append(name.clone(), v);
                }
            }
        }
    }
}
