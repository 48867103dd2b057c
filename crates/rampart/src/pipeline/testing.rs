//! Request contexts for the phases' unit tests: a configuration and a request, no sockets, a
//! fixed clock and random source.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rampart_http::{Limits, Parse, RequestHead};

use super::fields::RequestFields;
use super::{Connection, Decision, PhaseEnv, REQUEST_PHASES, RequestContext};
use crate::geo::GeoInfo;
use crate::message::Protocol;
use crate::state::Generation;

/// A configuration's state and one request to run phases on.
pub(crate) struct TestRequest {
    pub(crate) generation: Arc<Generation>,
    head: RequestHead,
    geo: GeoInfo,
    client_ip: IpAddr,
}

/// A zone for `a.test` in front of a closed port, with `extra` added to the zone's table.
/// The Browser Integrity Check is off unless `extra` sets it: the tests' requests carry no
/// User-Agent.
pub(crate) fn zone_config(extra: &str) -> String {
    let bic = match extra.contains("browser_integrity_check") {
        true => "",
        false => "browser_integrity_check = false\n",
    };
    format!(
        "[server]\naccess_log = \"off\"\nadmin_listen = \"off\"\n\n[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:9\"\n{bic}{extra}"
    )
}

impl TestRequest {
    /// `raw` (an HTTP/1.1 head) from `client_ip`, under the configuration `toml`.
    pub(crate) fn new(toml: &str, raw: &str, client_ip: &str) -> TestRequest {
        let config = match crate::config::load_str("test.toml", toml, None) {
            Ok(l) => l.config,
            Err(e) => panic!("test configuration: {e}"),
        };
        TestRequest {
            generation: Arc::new(Generation::new(config)),
            head: parse(raw),
            geo: GeoInfo::default(),
            client_ip: client_ip.parse().expect("an IP"),
        }
    }

    /// Another request under the same configuration state (the same counters).
    pub(crate) fn another(&self, raw: &str, client_ip: &str) -> TestRequest {
        TestRequest {
            generation: self.generation.clone(),
            head: parse(raw),
            geo: GeoInfo::default(),
            client_ip: client_ip.parse().expect("an IP"),
        }
    }

    /// Runs `f` on a fresh context of the request, at `at` seconds into a fixed clock.
    pub(crate) fn at<R>(
        &self,
        at: u64,
        f: impl FnOnce(&mut RequestContext<'_>, &PhaseEnv) -> R,
    ) -> R {
        let start = base_instant();
        let env = PhaseEnv::fixed(
            start + Duration::from_secs(at),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + at),
            7,
        );
        let fields = RequestFields::new(
            &self.head,
            self.client_ip,
            &self.geo,
            "HTTP/1.1",
            env.unix_secs(),
            false,
        );
        let conn = Connection {
            peer: SocketAddr::new(self.client_ip, 40000),
            client_ip: self.client_ip,
            protocol: Protocol::Http11,
            tls: false,
        };
        let mut ctx =
            RequestContext::new(&self.generation, &self.head, conn, &self.geo, &fields, &env);
        f(&mut ctx, &env)
    }
}

fn parse(raw: &str) -> RequestHead {
    match rampart_http::parse_request_head(raw.as_bytes(), &Limits::default()) {
        Ok(Parse::Complete((h, _))) => h,
        other => panic!("test request: {other:?}"),
    }
}

/// One fixed instant per test process, so that times given in seconds line up.
fn base_instant() -> Instant {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Runs every request phase in order, as the session does for a request whose phases need no
/// body, and returns the first decision that does not continue.
pub(crate) fn run_phases(ctx: &mut RequestContext<'_>, env: &PhaseEnv) -> Decision {
    for phase in &REQUEST_PHASES {
        if ctx.skipped.contains(phase.id) {
            continue;
        }
        match (phase.run)(ctx, env) {
            Decision::Continue => {}
            other => return other,
        }
    }
    Decision::Continue
}
