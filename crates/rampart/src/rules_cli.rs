//! `rampart rules check` and `rampart rules test`: how a site owner tries a rule before
//! deploying it.

use std::net::IpAddr;
use std::path::Path;

use bytes::Bytes;
use rampart_http::{Limits, Parse};
use rampart_rules::{Compiler, ExecutionContext, Filter, Lists};

use crate::config::security::scheme;
use crate::geo::GeoInfo;
use crate::pipeline::InspectedBody;
use crate::pipeline::fields::RequestFields;

/// Compiles `expression` against the HTTP scheme and `lists` (a configuration's `[[list]]`s);
/// the error text has the caret under the problem.
pub fn check(expression: &str, lists: &Lists) -> Result<Filter, String> {
    Compiler::new(scheme())
        .with_lists(lists.clone())
        .compile(expression)
        .map_err(|e| e.to_string())
}

/// The named lists of the configuration at `path` (none without one).
pub fn lists(path: Option<&Path>) -> Result<Lists, String> {
    match path {
        None => Ok(Lists::new()),
        Some(p) => crate::config::load_file(p)
            .map(|loaded| loaded.config.lists)
            .map_err(|e| e.to_string()),
    }
}

/// Reads a raw HTTP/1.1 request from `path`. Files written in an editor usually end lines
/// with LF only; they are accepted by turning LF into CRLF when the file has no CR at all, and a
/// missing blank line at the end of the head is added.
pub fn read_request(path: &Path) -> Result<Vec<u8>, String> {
    let mut raw =
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !raw.contains(&b'\r') {
        let mut crlf = Vec::with_capacity(raw.len() + 64);
        for &b in &raw {
            if b == b'\n' {
                crlf.push(b'\r');
            }
            crlf.push(b);
        }
        raw = crlf;
    }
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        while raw.ends_with(b"\r\n") {
            raw.truncate(raw.len() - 2);
        }
        raw.extend_from_slice(b"\r\n\r\n");
    }
    Ok(raw)
}

/// Evaluates `expression` against the raw request in `raw`, as if it came from `client_ip`,
/// as a zone with the default settings sees it: the URL normalised (Cloudflare's kind), and
/// the body after the head inspected up to the default inspection limit.
pub fn test(
    expression: &str,
    raw: &[u8],
    client_ip: IpAddr,
    lists: &Lists,
) -> Result<bool, String> {
    let filter = check(expression, lists)?;
    let (head, head_len) = match rampart_http::parse_request_head(raw, &Limits::default()) {
        Ok(Parse::Complete(done)) => done,
        Ok(Parse::Partial) => {
            return Err("the request file ends before the end of the request head".into());
        }
        Err(e) => {
            return Err(format!(
                "the request file is not a valid HTTP/1.1 request: {e}"
            ));
        }
    };
    let geo = GeoInfo::default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let fields = RequestFields::new(&head, client_ip, &geo, head.version().as_str(), now, false);
    fields.normalize(rampart_http::Normalization::default());
    let body = &raw[head_len..];
    let max = crate::config::request::DEFAULT_MAX_BODY_INSPECTION;
    fields.set_body(InspectedBody {
        bytes: Bytes::copy_from_slice(&body[..body.len().min(max)]),
        truncated: body.len() > max,
    });
    let exec = ExecutionContext::new(scheme(), &fields);
    Ok(filter.execute(&exec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_is_tested_against_a_raw_request() {
        let raw = b"POST /login?x=1 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: curl/8\r\nContent-Length: 0\r\n\r\n";
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            test(
                r#"http.request.uri.path eq "/login" and http.request.method eq "POST""#,
                raw,
                ip,
                &Lists::new()
            ),
            Ok(true)
        );
        assert_eq!(
            test(r#"ip.src in {10.0.0.0/8}"#, raw, ip, &Lists::new()),
            Ok(false)
        );
        assert_eq!(
            test(
                r#"http.request.uri.args["x"][0] eq "1""#,
                raw,
                ip,
                &Lists::new()
            ),
            Ok(true)
        );
        assert!(
            test("http.request.uri.paht eq \"/\"", raw, ip, &Lists::new())
                .unwrap_err()
                .contains("did you mean `http.request.uri.path`")
        );
        assert!(
            test(
                "http.host eq \"x\"",
                b"GET / HTTP/1.1\r\n\r\n",
                ip,
                &Lists::new()
            )
            .unwrap_err()
            .contains("not a valid HTTP/1.1 request")
        );
    }

    #[test]
    fn the_tested_request_is_normalised_and_its_body_read() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let none = Lists::new();
        let raw = b"POST //x/../%73ecret HTTP/1.1\r\nHost: a.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\n\r\nuser=evil&a=";
        let t = |e: &str| test(e, raw, ip, &none);
        assert_eq!(t(r#"http.request.uri.path eq "/secret""#), Ok(true));
        assert_eq!(
            t(r#"raw.http.request.uri.path eq "//x/../%73ecret""#),
            Ok(true)
        );
        assert_eq!(t(r#"http.request.body.raw contains "evil""#), Ok(true));
        assert_eq!(
            t(r#"any(http.request.body.form["user"][*] == "evil")"#),
            Ok(true)
        );
        assert_eq!(t("http.request.body.truncated"), Ok(false));
    }

    #[test]
    fn lists_of_a_configuration_are_known_to_check() {
        let mut lists = Lists::new();
        lists.insert(
            "office",
            rampart_rules::List::Ip(rampart_rules::IpSet::from_iter(["192.0.2.0/24"
                .parse()
                .unwrap()])),
        );
        assert!(
            check("ip.src in $office", &Lists::new())
                .unwrap_err()
                .contains("office")
        );
        assert!(check("ip.src in $office", &lists).is_ok());
        let raw = b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
        let inside: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(test("ip.src in $office", raw, inside, &lists), Ok(true));
    }
}
