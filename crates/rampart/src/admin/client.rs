//! The command line's client of the admin API (`rampart cache purge`): it finds the admin
//! listener in the configuration and asks it, so that the running proxy does the work.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::config;

/// How long the command waits for the admin listener.
const PATIENCE: Duration = Duration::from_secs(10);

/// The admin listener of the configuration at `path` (the embedded default without one), to
/// connect to: an unspecified address (0.0.0.0, ::) is reached on loopback.
pub fn admin_address(path: Option<&Path>) -> Result<SocketAddr, String> {
    let loaded = match path {
        Some(p) => config::load_file(p),
        None => config::load_str(config::EMBEDDED_NAME, config::EMBEDDED_DEFAULT, None),
    }
    .map_err(|e| e.to_string())?;
    let mut addr = loaded.config.server.admin_listen.ok_or_else(|| {
        "server.admin_listen is off in this configuration: the running rampart has no admin \
         listener to ask"
            .to_string()
    })?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Ok(addr)
}

/// Sends `body` as JSON to `path` on the admin listener at `addr` and returns the envelope's
/// result; an error is the envelope's messages, or why the listener could not be asked.
pub fn post(addr: SocketAddr, path: &str, body: &Value) -> Result<Value, String> {
    let unreachable = |e: std::io::Error| {
        format!("could not reach the admin listener on {addr} (is rampart running?): {e}")
    };
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(PATIENCE))
        .map_err(unreachable)?;
    let body = body.to_string();
    // With `[[api_token]]`s configured the API needs one: from RAMPART_API_TOKEN.
    let authorization = match std::env::var("RAMPART_API_TOKEN") {
        Ok(t) if !t.is_empty() => format!("Authorization: Bearer {t}\r\n"),
        _ => String::new(),
    };
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         {authorization}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(unreachable)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(unreachable)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the admin listener's answer has no end of head")?;
    let envelope: Value = serde_json::from_slice(&answer[split + 4..]).map_err(|e| {
        format!(
            "the admin listener did not answer with JSON ({e}): {}",
            String::from_utf8_lossy(&answer[..split])
        )
    })?;
    if envelope["success"] == Value::Bool(true) {
        return Ok(envelope["result"].clone());
    }
    let errors: Vec<String> = envelope["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{} (code {})",
                e["message"].as_str().unwrap_or("?"),
                e["code"]
            )
        })
        .collect();
    Err(errors.join("; "))
}
