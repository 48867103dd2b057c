//! `rampart rules check` and `rampart rules test`: how a site owner tries a rule before
//! deploying it.

use std::net::IpAddr;
use std::path::Path;

use rampart_http::{Limits, Parse};
use rampart_rules::{Compiler, ExecutionContext, Filter};

use crate::config::security::scheme;
use crate::geo::GeoInfo;
use crate::pipeline::fields::RequestFields;

/// Compiles `expression` against the HTTP scheme; the error text has the caret under the problem.
pub fn check(expression: &str) -> Result<Filter, String> {
    Compiler::new(scheme())
        .compile(expression)
        .map_err(|e| e.to_string())
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

/// Evaluates `expression` against the raw request in `raw`, as if it came from `client_ip`.
pub fn test(expression: &str, raw: &[u8], client_ip: IpAddr) -> Result<bool, String> {
    let filter = check(expression)?;
    let (head, _) = match rampart_http::parse_request_head(raw, &Limits::default()) {
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
                ip
            ),
            Ok(true)
        );
        assert_eq!(test(r#"ip.src in {10.0.0.0/8}"#, raw, ip), Ok(false));
        assert_eq!(
            test(r#"http.request.uri.args["x"][0] eq "1""#, raw, ip),
            Ok(true)
        );
        assert!(
            test("http.request.uri.paht eq \"/\"", raw, ip)
                .unwrap_err()
                .contains("did you mean `http.request.uri.path`")
        );
        assert!(
            test("http.host eq \"x\"", b"GET / HTTP/1.1\r\n\r\n", ip)
                .unwrap_err()
                .contains("not a valid HTTP/1.1 request")
        );
    }
}
