//! The functions of the language, with any literal arguments (separators,
//! regexes, replacement templates) compiled once at compile time.

mod json;
mod table;
mod text;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use regex::bytes::Regex;

use crate::compile::Wildcard;
use crate::exec::Val;
use crate::ipset::network_of;

pub(crate) use table::{Arg, FUNCTIONS, Typing, function};
pub(crate) use text::{Piece, parse_replacement, push_limited};

/// A function, with what could be prepared at compile time.
#[derive(Debug, Clone)]
pub(crate) enum Func {
    Any,
    All,
    Lower,
    Upper,
    Len,
    StartsWith,
    EndsWith,
    /// `limit` is [`ParserSettings::max_value_length`](crate::ParserSettings::max_value_length).
    Concat {
        limit: usize,
    },
    UrlDecode {
        recursive: bool,
        unicode: bool,
    },
    ToString,
    Substring,
    Split {
        separator: Box<[u8]>,
        limit: usize,
    },
    Join {
        limit: usize,
    },
    RemoveBytes,
    RegexReplace {
        regex: Regex,
        replacement: Vec<Piece>,
        limit: usize,
    },
    WildcardReplace {
        wildcard: Arc<Wildcard>,
        replacement: Vec<Piece>,
        limit: usize,
    },
    Cidr,
    Cidr6,
    DecodeBase64,
    LookupJsonString,
    LookupJsonInteger,
}

fn bytes(v: Vec<u8>) -> Val<'static> {
    Val::Bytes(Cow::Owned(v))
}

impl Func {
    /// Applies the function. `None` is a missing value (e.g. a JSON key
    /// that is not there, or input that is not valid Base64).
    pub(crate) fn call<'c>(&self, mut args: Vec<Val<'c>>) -> Option<Val<'c>> {
        if args.is_empty() {
            return None;
        }
        let first = args.remove(0);
        let rest = args;
        Some(match self {
            Func::Any => Val::Bool(first.into_elements().iter().any(Val::as_bool)),
            Func::All => Val::Bool(first.into_elements().iter().all(Val::as_bool)),
            Func::Lower => bytes(first.as_bytes()?.to_ascii_lowercase()),
            Func::Upper => bytes(first.as_bytes()?.to_ascii_uppercase()),
            Func::Len => Val::Int(first.len()? as i64),
            Func::StartsWith => Val::Bool(first.as_bytes()?.starts_with(rest.first()?.as_bytes()?)),
            Func::EndsWith => Val::Bool(first.as_bytes()?.ends_with(rest.first()?.as_bytes()?)),
            Func::Concat { limit } => match first {
                Val::Bytes(b) => {
                    let mut out = Vec::new();
                    push_limited(&mut out, &b, *limit);
                    for r in &rest {
                        push_limited(&mut out, r.as_bytes()?, *limit);
                    }
                    bytes(out)
                }
                array => {
                    // Arrays count the bytes of their elements (16 per non-Bytes one).
                    let mut size = 0usize;
                    let mut out = Vec::new();
                    for e in array
                        .into_elements()
                        .into_iter()
                        .chain(rest.into_iter().flat_map(Val::into_elements))
                    {
                        size = size.saturating_add(e.as_bytes().map_or(16, <[u8]>::len));
                        if size > *limit {
                            break;
                        }
                        out.push(e);
                    }
                    Val::Array(out)
                }
            },
            Func::UrlDecode { recursive, unicode } => {
                bytes(text::url_decode(first.as_bytes()?, *recursive, *unicode))
            }
            Func::ToString => bytes(match first {
                Val::Int(i) => i.to_string().into_bytes(),
                Val::Bool(b) => b.to_string().into_bytes(),
                Val::Ip(ip) => ip.to_string().into_bytes(),
                _ => return None,
            }),
            Func::Substring => {
                let b = first.as_bytes()?;
                let start = rest.first()?.as_int()?;
                let end = match rest.get(1) {
                    Some(e) => e.as_int()?,
                    None => i64::MAX,
                };
                bytes(text::substring(b, start, end).to_vec())
            }
            Func::Split { separator, limit } => Val::Array(
                text::split(first.as_bytes()?, separator, *limit)
                    .into_iter()
                    .map(|p| bytes(p.to_vec()))
                    .collect(),
            ),
            Func::Join { limit } => {
                let sep = rest.first()?.as_bytes()?;
                let mut out = Vec::new();
                for (i, item) in first.into_elements().iter().enumerate() {
                    if i > 0 {
                        push_limited(&mut out, sep, *limit);
                    }
                    push_limited(&mut out, item.as_bytes()?, *limit);
                }
                bytes(out)
            }
            Func::RemoveBytes => {
                let remove = rest.first()?.as_bytes()?;
                let mut table = [false; 256];
                for b in remove {
                    table[usize::from(*b)] = true;
                }
                bytes(
                    first
                        .as_bytes()?
                        .iter()
                        .copied()
                        .filter(|b| !table[usize::from(*b)])
                        .collect(),
                )
            }
            Func::RegexReplace {
                regex,
                replacement,
                limit,
            } => {
                let src = first.as_bytes()?;
                match regex.captures(src) {
                    None => first,
                    Some(caps) => {
                        let m = caps.get(0)?;
                        let mut out = Vec::new();
                        push_limited(&mut out, &src[..m.start()], *limit);
                        text::expand(&mut out, replacement, &caps, *limit);
                        push_limited(&mut out, &src[m.end()..], *limit);
                        bytes(out)
                    }
                }
            }
            Func::WildcardReplace {
                wildcard,
                replacement,
                limit,
            } => {
                let src = first.as_bytes()?;
                match wildcard.capture_regex().captures(src) {
                    None => first,
                    Some(caps) => {
                        let mut out = Vec::new();
                        text::expand(&mut out, replacement, &caps, *limit);
                        bytes(out)
                    }
                }
            }
            Func::Cidr | Func::Cidr6 => {
                let Val::Ip(ip) = first else { return None };
                let (v4_bits, v6_bits) = match self {
                    Func::Cidr => (rest.first()?.as_int()?, rest.get(1)?.as_int()?),
                    _ => (32, rest.first()?.as_int()?),
                };
                let bits = match ip {
                    IpAddr::V4(_) => v4_bits.clamp(0, 32),
                    IpAddr::V6(_) => v6_bits.clamp(0, 128),
                };
                Val::Ip(network_of(ip, bits as u8))
            }
            Func::DecodeBase64 => bytes(text::decode_base64(first.as_bytes()?)?),
            Func::LookupJsonString => bytes(json::lookup_string(first.as_bytes()?, &rest)?),
            Func::LookupJsonInteger => Val::Int(json::lookup_integer(first.as_bytes()?, &rest)?),
        })
    }
}
