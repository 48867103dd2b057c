//! Challenges: the endpoint a solved challenge is sent to, the clearance cookie it earns,
//! and the challenge any phase may answer with (custom rules, rate limiting rules, the
//! security level).
//!
//! A challenged request without a clearance gets, if it asks for HTML, the challenge page
//! (403, `rampart-mitigated: challenge`); otherwise the `challenge` problem (403, the same
//! field): a client that cannot run the page is told so, not given one. The page solves a
//! proof of work and posts it to [`ENDPOINT`], which checks it (one HMAC, one SHA-256),
//! remembers it solved, sets the clearance cookie and sends the browser back with 303 to
//! where it was going. What the endpoint refuses (replayed, forged, another address or
//! User-Agent, expired, wrong) is logged with its reason, and the browser is given a new
//! challenge to solve.
//!
//! A challenged POST is answered with the page like any request; its body is not kept, and
//! the browser returns to the URL with GET once it has its clearance (the form is sent
//! again from there). Challenge the pages a form is on, not only its target, so that
//! visitors have their clearance before they post.

use bytes::Bytes;
use rampart_challenge::{Client, Issue, Refusal, Spending, SpentError};

use super::{BodyNeed, Decision, OverLimit, PhaseEnv, RequestContext};
use crate::config::challenge::{ChallengeKind, Exempt};
use crate::errors::{EdgeError, Rejection, rejection_response};
use crate::message::Response;
use crate::observe::SecurityMatch;
use crate::state::ZoneState;

/// Where a solution is sent: Cloudflare keeps its own paths under `/cdn-cgi/`, so does
/// rampart, on every zone.
pub const ENDPOINT: &str = "/cdn-cgi/rampart/challenge";

/// The clearance cookie's name.
pub const COOKIE: &str = "rampart_clearance";

/// The most of a solution's form the endpoint reads: a return path of 8 KB, percent-encoded
/// (three bytes each at worst), and the token.
const MAX_FORM: usize = 32 * 1024;

/// The endpoint reads a POST's form (up to 32 KB; a longer one is refused with 413).
pub fn endpoint_body(ctx: &RequestContext<'_>) -> BodyNeed {
    match ctx.head.path() == ENDPOINT && ctx.head.method() == "POST" {
        true => BodyNeed::Inspect {
            max: MAX_FORM,
            over: OverLimit::Reject,
        },
        false => BodyNeed::None,
    }
}

/// Phase: answers [`ENDPOINT`]: POST with the page's form, or GET with the waiting path's
/// query (a managed challenge's page without JavaScript).
pub fn endpoint(ctx: &mut RequestContext<'_>, env: &PhaseEnv) -> Decision {
    let Some(zone) = ctx.zone.clone() else {
        return Decision::Continue;
    };
    if ctx.head.path() != ENDPOINT {
        return Decision::Continue;
    }
    let form = match ctx.head.method() {
        "POST" => ctx
            .rules
            .fields()
            .body()
            .map(|b| String::from_utf8_lossy(&b.bytes).into_owned())
            .unwrap_or_default(),
        "GET" | "HEAD" => ctx.head.query().unwrap_or("").to_string(),
        _ => {
            return Decision::Reject(Rejection::explained(
                EdgeError::BadRequest,
                format!("{ENDPOINT} takes the challenge page's form (POST), or GET"),
            ));
        }
    };
    let field = |name: &str| {
        form.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| crate::text::query_value(v))
            .unwrap_or_default()
    };
    let (token, counter, return_to) = (field("t"), field("n"), field("r"));
    let return_to = if safe_return(&return_to) {
        return_to
    } else {
        "/".to_string()
    };
    let keys = ctx.generation.challenge_keys();
    let head = ctx.head;
    let client = client(ctx.client_ip, head);
    let now = unix_now(env);
    let zone_name = zone.config.name.as_str();
    let issued = keys.check_challenge(&token, zone_name, &return_to, &client, now);
    // A new challenge after a refusal is of the kind the refused one was (a managed one has a
    // waiting path), never of the kind the client asks for.
    let kind = match &issued {
        Ok(c) if c.wait_secs > 0 => ChallengeKind::Managed,
        _ => ChallengeKind::Js,
    };
    let checked = issued
        .and_then(|c| c.accepts(&token, &counter, now).map(|()| c))
        .and_then(|c| {
            let spent = &ctx.generation.challenges.spent;
            match spent.spend(c.nonce, c.expires, now) {
                Ok(Spending::Remembered) => Ok(()),
                Ok(Spending::Full) => {
                    tracing::warn!(
                        "challenge solutions: the set of solved challenges is full; this one \
                         is accepted without being remembered"
                    );
                    Ok(())
                }
                Err(SpentError::Replayed) => Err(Refusal::Replayed),
            }
        });
    match checked {
        Ok(()) => {
            let ms = field("ms");
            tracing::info!(
                zone = zone_name,
                client = %ctx.client_ip,
                solve_ms = ms.parse::<u64>().ok(),
                "challenge solved"
            );
            ctx.log.error_reason = match (ms.parse::<u64>(), counter.parse::<u64>()) {
                (Ok(ms), Ok(n)) => format!(
                    "challenge solved in {ms} ms ({} hashes)",
                    n.saturating_add(1)
                ),
                _ => "challenge passed by waiting".to_string(),
            };
            let ttl = ctx.generation.config.challenge.clearance_ttl.as_secs();
            let clearance = keys.clearance(zone_name, &client, now + ttl);
            Decision::Respond(Box::new(cleared_redirect(
                &return_to, &clearance, ttl, ctx.tls,
            )))
        }
        Err(refusal) => {
            tracing::info!(
                zone = zone_name,
                client = %ctx.client_ip,
                reason = refusal.name(),
                "challenge refused: {refusal}"
            );
            ctx.log.error_reason = format!("challenge refused: {refusal}");
            ctx.security = Some(SecurityMatch {
                action: "challenge_failed",
                rule_id: refusal.name().to_string(),
                description: refusal.to_string(),
                source: "challenge",
            });
            // A new challenge to solve, for the same place; the page knows it follows a
            // refusal (so it is no sign of a lost cookie).
            Decision::Respond(Box::new(answer(ctx, env, kind, &zone, &return_to, true)))
        }
    }
}

/// A path of this site to go back to: `/...`, not `//host` nor `/\host`, no control bytes.
fn safe_return(r: &str) -> bool {
    r.starts_with('/')
        && !r.starts_with("//")
        && !r.starts_with("/\\")
        && r.len() <= 8192
        && !r.bytes().any(|b| b.is_ascii_control())
}

/// 303 to `return_to`, with the clearance.
fn cleared_redirect(return_to: &str, clearance: &str, ttl: u64, tls: bool) -> Response {
    let mut r = Response::full(303, "text/plain; charset=utf-8", Bytes::new());
    let head = &mut r.head;
    head.append(http::header::LOCATION, Bytes::from(return_to.to_owned()));
    head.append(http::header::CACHE_CONTROL, Bytes::from_static(b"no-store"));
    let secure = if tls { "; Secure" } else { "" };
    head.append(
        http::header::SET_COOKIE,
        Bytes::from(format!(
            "{COOKIE}={clearance}; Path=/; Max-Age={ttl}; HttpOnly; SameSite=Lax{secure}"
        )),
    );
    r
}

/// The client the tokens are bound to.
fn client<'c>(ip: std::net::IpAddr, head: &'c rampart_http::RequestHead) -> Client<'c> {
    Client {
        ip,
        user_agent: head.header("user-agent").unwrap_or(b""),
    }
}

fn unix_now(env: &PhaseEnv) -> u64 {
    u64::try_from(env.unix_secs()).unwrap_or(0)
}

/// What the request's clearance cookie says: `Ok(true)` a valid one, `Ok(false)` none, or
/// why the one it carries does not hold.
fn clearance(ctx: &RequestContext<'_>, env: &PhaseEnv) -> Result<bool, Refusal> {
    let Some(zone) = ctx.zone.as_ref() else {
        return Ok(false);
    };
    let keys = ctx.generation.challenge_keys();
    let client = client(ctx.client_ip, ctx.head);
    let now = unix_now(env);
    let mut found = Ok(false);
    for (name, value) in ctx.head.headers() {
        if !name.eq_ignore_ascii_case("cookie") {
            continue;
        }
        for pair in value.split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            if let Some(v) = pair
                .strip_prefix(COOKIE.as_bytes())
                .and_then(|v| v.strip_prefix(b"="))
            {
                match keys.check_clearance(v, &zone.config.name, &client, now) {
                    Ok(_) => return Ok(true),
                    Err(refusal) => found = Err(refusal),
                }
            }
        }
    }
    found
}

/// Whether a `kind` challenge lets the request through: it is exempt, it carries a
/// clearance, or (a managed challenge) it comes from an address of good reputation.
/// `cleared` caches the clearance's verdict for the request.
pub fn passes(
    ctx: &RequestContext<'_>,
    env: &PhaseEnv,
    kind: ChallengeKind,
    cleared: &mut Option<Result<bool, Refusal>>,
) -> bool {
    let Some(zone) = ctx.zone.as_ref() else {
        return true;
    };
    if exempt(ctx, &zone.config.challenge.exempt) {
        return true;
    }
    if kind == ChallengeKind::Managed && ctx.rules.fields().threat() == Some(0) {
        return true;
    }
    let verdict = match ctx.cleared {
        Some(known) => Ok(known),
        None => *cleared.get_or_insert_with(|| clearance(ctx, env)),
    };
    verdict == Ok(true)
}

/// Keeps a clearance's verdict in the request's context (and a refused one's reason in its
/// log line).
pub fn remember(ctx: &mut RequestContext<'_>, cleared: Option<Result<bool, Refusal>>) {
    match cleared {
        Some(Ok(ok)) => ctx.cleared = Some(ok),
        Some(Err(refusal)) => {
            ctx.cleared = Some(false);
            ctx.log.error_reason = format!("clearance refused: {refusal}");
        }
        None => {}
    }
}

/// Whether a challenge leaves the request alone by the zone's exemptions. Only a plain path
/// is exempt: one that normalisation left as sent, with no `;` (`/.well-known/..;/admin` is
/// `/admin` to Tomcat), no `%` (an encoded `/` or `\` the origin may decode) and no `\`.
fn exempt(ctx: &RequestContext<'_>, exempt: &Exempt) -> bool {
    let path = ctx.rules.fields().path();
    if path != ctx.head.path() || path.contains([';', '%', '\\']) {
        return false;
    }
    if exempt.robots && path == "/robots.txt" {
        return true;
    }
    if exempt.favicon && path == "/favicon.ico" {
        return true;
    }
    if exempt.well_known && path.starts_with("/.well-known/") {
        return true;
    }
    let reads = matches!(ctx.head.method(), "GET" | "HEAD");
    if exempt.feeds && reads && feed_path(path) {
        return true;
    }
    if exempt.feed_accept && reads {
        let wants_feed = ctx.head.header("accept").is_some_and(|a| {
            let a = String::from_utf8_lossy(a).to_ascii_lowercase();
            (a.contains("application/rss+xml")
                || a.contains("application/atom+xml")
                || a.contains("application/feed+json"))
                && !a.contains("text/html")
        });
        if wants_feed {
            return true;
        }
    }
    false
}

/// A feed's path: its last segment (or the one before a final `/`) is `feed`, `rss`, `atom`,
/// `feed.xml`, `rss.xml`, `atom.xml`, `index.xml`, `*.rss` or `*.atom`, and no segment
/// before it names a file (`/wp-login.php/feed` is served by `wp-login.php`).
fn feed_path(path: &str) -> bool {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let (dirs, last) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
    let dir_only = path.ends_with('/');
    let named = match dir_only {
        true => matches!(last, "feed" | "rss" | "atom"),
        false => {
            matches!(
                last,
                "feed" | "rss" | "atom" | "feed.xml" | "rss.xml" | "atom.xml" | "index.xml"
            ) || last.ends_with(".rss")
                || last.ends_with(".atom")
        }
    };
    named && !dirs.split('/').any(|d| d.contains('.'))
}

/// Challenges the request as `kind` asks, for the match `matched` (its source, rule and
/// description, for the log), unless it [`passes`].
pub fn challenge(
    ctx: &mut RequestContext<'_>,
    env: &PhaseEnv,
    kind: ChallengeKind,
    matched: SecurityMatch,
) -> Decision {
    let mut cleared = None;
    let passed = passes(ctx, env, kind, &mut cleared);
    remember(ctx, cleared);
    let Some(zone) = ctx.zone.clone().filter(|_| !passed) else {
        return Decision::Continue;
    };
    ctx.security = Some(SecurityMatch {
        action: kind.name(),
        ..matched
    });
    let target = ctx.head.path_and_query();
    let return_to = if safe_return(&target) {
        target.into_owned()
    } else {
        "/".to_string()
    };
    Decision::Respond(Box::new(answer(ctx, env, kind, &zone, &return_to, false)))
}

/// The answer to a challenged request: the page for a browser, the problem for others.
fn answer(
    ctx: &RequestContext<'_>,
    env: &PhaseEnv,
    kind: ChallengeKind,
    zone: &ZoneState,
    return_to: &str,
    after_refusal: bool,
) -> Response {
    // Only a client that asked for a web page gets the challenge page.
    if !crate::errors::names_html(ctx.head.header("accept")) {
        let mut audience = ctx.audience();
        // The problem, in JSON whatever else the client takes.
        if !matches!(
            crate::errors::negotiate(audience.accept),
            crate::errors::Format::Json
        ) {
            audience.accept = Some(b"application/problem+json");
        }
        audience.pages = None;
        let mut rejection = Rejection::new(EdgeError::Challenge, "a challenge without HTML");
        rejection
            .headers
            .push(("rampart-mitigated", "challenge".into()));
        return rejection_response(&rejection, &audience);
    }
    let settings = &zone.config.challenge;
    let wait_secs = match kind {
        ChallengeKind::Managed => settings.no_script_wait,
        ChallengeKind::Js => 0,
    };
    let nonce = (u128::from(env.random_u64()) << 64) | u128::from(env.random_u64());
    let token = ctx.generation.challenge_keys().challenge(&Issue {
        zone: &zone.config.name,
        return_to,
        client: client(ctx.client_ip, ctx.head),
        now: unix_now(env),
        nonce,
        difficulty: settings.difficulty,
        wait_secs,
    });
    crate::errors::challenge::challenge_page(&crate::errors::challenge::ChallengePage {
        token: &token,
        return_to,
        difficulty: settings.difficulty,
        wait_secs,
        ray_id: ctx.ray_id.as_str(),
        endpoint: ENDPOINT,
        after_refusal,
    })
}
