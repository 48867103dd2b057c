//! Challenge tokens, their proof of work, and clearances.

use std::fmt;
use std::hash::Hasher as _;
use std::net::IpAddr;

use ring::digest::{SHA256, digest};
use ring::hmac;
use siphasher::sip::SipHasher13;

use crate::hex;
use crate::keys::{Key, Keys};

/// How long a challenge may take to be solved, in seconds: ten minutes, so that a slow phone
/// with its JavaScript JIT off still finishes in time.
pub const CHALLENGE_TTL_SECS: u64 = 600;

/// The most leading zero bits a challenge may ask for (about 2^28 hashes on average: minutes
/// on a fast desktop).
pub const MAX_DIFFICULTY: u8 = 28;

const VERSION: u8 = 1;
const CHALLENGE_LEN: usize = 52;
const CHALLENGE_SIGNED: usize = 36;
const CLEARANCE_LEN: usize = 34;
const CLEARANCE_SIGNED: usize = 18;
const MAC_LEN: usize = 16;

/// The client a token is bound to.
#[derive(Clone, Copy, Debug)]
pub struct Client<'a> {
    /// Its address: an IPv4 address whole, an IPv6 address by its /64 (one household or
    /// phone moves within a /64 as its privacy addresses change).
    pub ip: IpAddr,
    /// Its User-Agent, as sent (empty when none).
    pub user_agent: &'a [u8],
}

impl Client<'_> {
    fn prefix(&self) -> [u8; 16] {
        match self.ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_ipv6_mapped().octets(),
                None => {
                    let mut p = [0u8; 16];
                    p[..8].copy_from_slice(&v6.octets()[..8]);
                    p
                }
            },
        }
    }

    /// Short keyed hashes of the address prefix and of the User-Agent: carried in tokens so
    /// that a refusal can say which binding broke. The MAC covers the full values.
    fn hints(&self, key: &Key) -> ([u8; 4], [u8; 4]) {
        let hint = |tag: &[u8], value: &[u8]| {
            let mut h = SipHasher13::new_with_key(&key.hint);
            h.write(tag);
            h.write(value);
            (h.finish() as u32).to_be_bytes()
        };
        (hint(b"ip", &self.prefix()), hint(b"ua", self.user_agent))
    }
}

/// Why a token or a solution was refused (for the log; the client gets a new challenge).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a token of this format.
    Malformed,
    /// A valid format whose signature does not verify with any key: made up, altered, or
    /// signed with a secret no longer configured.
    Forged,
    /// Signed for another client address.
    OtherIp,
    /// Signed for another User-Agent.
    OtherUserAgent,
    /// Past its expiry.
    Expired,
    /// A challenge that was solved already.
    Replayed,
    /// A counter that does not solve the challenge.
    WrongSolution,
    /// The waiting path taken before its time (or on a challenge without one).
    TooEarly,
}

impl Refusal {
    /// A short name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Forged => "forged",
            Refusal::OtherIp => "other_ip",
            Refusal::OtherUserAgent => "other_user_agent",
            Refusal::Expired => "expired",
            Refusal::Replayed => "replayed",
            Refusal::WrongSolution => "wrong_solution",
            Refusal::TooEarly => "too_early",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Malformed => "not a token of rampart's format",
            Refusal::Forged => {
                "its signature does not verify (forged, altered, or a retired secret)"
            }
            Refusal::OtherIp => "it was issued to another client address",
            Refusal::OtherUserAgent => "it was issued to another User-Agent",
            Refusal::Expired => "it expired",
            Refusal::Replayed => "the challenge was solved already",
            Refusal::WrongSolution => "the counter does not solve the challenge",
            Refusal::TooEarly => "the waiting path was taken before its time",
        })
    }
}

/// What a challenge is issued for.
#[derive(Clone, Copy, Debug)]
pub struct Issue<'a> {
    /// The zone: a token of one zone is worthless on another.
    pub zone: &'a str,
    /// The path (and query) the client returns to once it solved the challenge.
    pub return_to: &'a str,
    /// Whom it is for.
    pub client: Client<'a>,
    /// Now, in Unix seconds.
    pub now: u64,
    /// Unique per challenge (it names the challenge in [`Spent`](crate::Spent)).
    pub nonce: u128,
    /// Leading zero bits the proof of work needs (1 to [`MAX_DIFFICULTY`]).
    pub difficulty: u8,
    /// Seconds after which the challenge may be passed by waiting instead of working (the
    /// path for clients without JavaScript); 0 for none.
    pub wait_secs: u8,
}

/// A challenge whose signature, binding and age are good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    /// Its nonce.
    pub nonce: u128,
    /// When it was issued (Unix seconds).
    pub issued: u64,
    /// When it expires (Unix seconds).
    pub expires: u64,
    /// The work it asks for.
    pub difficulty: u8,
    /// Its waiting path, 0 for none.
    pub wait_secs: u8,
}

impl Checked {
    /// Whether `counter` solves the challenge `token`: the proof of work, or `wait` once the
    /// challenge's waiting time has passed.
    pub fn accepts(&self, token: &str, counter: &str, now: u64) -> Result<(), Refusal> {
        if counter == "wait" {
            return match self.wait_secs {
                0 => Err(Refusal::WrongSolution),
                w if now >= self.issued + u64::from(w) => Ok(()),
                _ => Err(Refusal::TooEarly),
            };
        }
        match solved(token, counter, self.difficulty) {
            true => Ok(()),
            false => Err(Refusal::WrongSolution),
        }
    }
}

/// Leading zero bits of `bytes`.
pub fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut n = 0;
    for &b in bytes {
        if b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// Whether SHA-256(`token` ":" `counter`) has `difficulty` leading zero bits. A counter is
/// 1 to 20 decimal digits: nothing longer is hashed.
pub fn solved(token: &str, counter: &str, difficulty: u8) -> bool {
    if counter.is_empty() || counter.len() > 20 || !counter.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let mut input = Vec::with_capacity(token.len() + 1 + counter.len());
    input.extend_from_slice(token.as_bytes());
    input.push(b':');
    input.extend_from_slice(counter.as_bytes());
    leading_zero_bits(digest(&SHA256, &input).as_ref()) >= u32::from(difficulty)
}

/// The MAC of a token: its signed bytes, then what it is bound to but does not carry.
fn mac(key: &Key, domain: &[u8], signed: &[u8], bound: &[&[u8]], client: &Client<'_>) -> [u8; 16] {
    let mut cx = hmac::Context::with_key(&key.hmac);
    cx.update(domain);
    cx.update(signed);
    for b in bound {
        cx.update(&(b.len() as u32).to_be_bytes());
        cx.update(b);
    }
    cx.update(&client.prefix());
    cx.update(client.user_agent);
    let tag = cx.sign();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&tag.as_ref()[..MAC_LEN]);
    out
}

/// Equality in time independent of where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Verifies the MAC of `bytes` (`signed` of them signed, the rest the MAC) with the keys the
/// token names; when none verifies, says which binding the hints show broken.
fn verify<const N: usize>(
    keys: &Keys,
    bytes: &[u8; N],
    signed: usize,
    hint_at: usize,
    domain: &[u8],
    bound: &[&[u8]],
    client: &Client<'_>,
) -> Result<(), Refusal> {
    if bytes[0] != VERSION {
        return Err(Refusal::Malformed);
    }
    let mut named = keys.named(bytes[1]).peekable();
    let Some(first) = named.peek().copied() else {
        return Err(Refusal::Forged);
    };
    for key in named {
        if same(
            &mac(key, domain, &bytes[..signed], bound, client),
            &bytes[signed..],
        ) {
            return Ok(());
        }
    }
    let (ip, ua) = client.hints(first);
    if bytes[hint_at..hint_at + 4] != ip {
        Err(Refusal::OtherIp)
    } else if bytes[hint_at + 4..hint_at + 8] != ua {
        Err(Refusal::OtherUserAgent)
    } else {
        Err(Refusal::Forged)
    }
}

const CHALLENGE_DOMAIN: &[u8] = b"rampart-challenge\0";
const CLEARANCE_DOMAIN: &[u8] = b"rampart-clearance\0";

impl Keys {
    /// A new challenge token (hex), signed with the signing key.
    pub fn challenge(&self, issue: &Issue<'_>) -> String {
        let key = self.signing();
        let (ip, ua) = issue.client.hints(key);
        let mut b = [0u8; CHALLENGE_LEN];
        b[0] = VERSION;
        b[1] = key.id;
        b[2..10].copy_from_slice(&issue.now.to_be_bytes());
        b[10..26].copy_from_slice(&issue.nonce.to_be_bytes());
        b[26] = issue.difficulty.clamp(1, MAX_DIFFICULTY);
        b[27] = issue.wait_secs;
        b[28..32].copy_from_slice(&ip);
        b[32..36].copy_from_slice(&ua);
        let tag = mac(
            key,
            CHALLENGE_DOMAIN,
            &b[..CHALLENGE_SIGNED],
            &[issue.zone.as_bytes(), issue.return_to.as_bytes()],
            &issue.client,
        );
        b[CHALLENGE_SIGNED..].copy_from_slice(&tag);
        hex::encode(&b)
    }

    /// The challenge `token`, if it was issued by these keys for this zone, return path and
    /// client, and has not expired at `now`. The proof of work is [`Checked::accepts`]'s.
    pub fn check_challenge(
        &self,
        token: &str,
        zone: &str,
        return_to: &str,
        client: &Client<'_>,
        now: u64,
    ) -> Result<Checked, Refusal> {
        let b: [u8; CHALLENGE_LEN] = hex::decode(token.as_bytes()).ok_or(Refusal::Malformed)?;
        verify(
            self,
            &b,
            CHALLENGE_SIGNED,
            28,
            CHALLENGE_DOMAIN,
            &[zone.as_bytes(), return_to.as_bytes()],
            client,
        )?;
        let issued = u64::from_be_bytes(b[2..10].try_into().expect("8 bytes"));
        let expires = issued.saturating_add(CHALLENGE_TTL_SECS);
        if now > expires {
            return Err(Refusal::Expired);
        }
        Ok(Checked {
            nonce: u128::from_be_bytes(b[10..26].try_into().expect("16 bytes")),
            issued,
            expires,
            difficulty: b[26],
            wait_secs: b[27],
        })
    }

    /// A clearance (hex) for `client` on `zone`, valid until `expires` (Unix seconds).
    pub fn clearance(&self, zone: &str, client: &Client<'_>, expires: u64) -> String {
        let key = self.signing();
        let (ip, ua) = client.hints(key);
        let mut b = [0u8; CLEARANCE_LEN];
        b[0] = VERSION;
        b[1] = key.id;
        b[2..10].copy_from_slice(&expires.to_be_bytes());
        b[10..14].copy_from_slice(&ip);
        b[14..18].copy_from_slice(&ua);
        let tag = mac(
            key,
            CLEARANCE_DOMAIN,
            &b[..CLEARANCE_SIGNED],
            &[zone.as_bytes()],
            client,
        );
        b[CLEARANCE_SIGNED..].copy_from_slice(&tag);
        hex::encode(&b)
    }

    /// When the clearance `value` expires, if these keys issued it for this zone and client
    /// and it has not expired at `now`.
    pub fn check_clearance(
        &self,
        value: &[u8],
        zone: &str,
        client: &Client<'_>,
        now: u64,
    ) -> Result<u64, Refusal> {
        let b: [u8; CLEARANCE_LEN] = hex::decode(value).ok_or(Refusal::Malformed)?;
        verify(
            self,
            &b,
            CLEARANCE_SIGNED,
            10,
            CLEARANCE_DOMAIN,
            &[zone.as_bytes()],
            client,
        )?;
        let expires = u64::from_be_bytes(b[2..10].try_into().expect("8 bytes"));
        match now <= expires {
            true => Ok(expires),
            false => Err(Refusal::Expired),
        }
    }
}

#[cfg(test)]
mod tests;
