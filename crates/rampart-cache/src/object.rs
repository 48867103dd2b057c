//! A stored response: its status, fields and body, and what the cache knows of it.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::encoding::Encodings;

/// A response as stored: the fields an origin sent (less those a cache never stores), the
/// whole body, and its freshness.
#[derive(Clone, Debug)]
pub struct Object {
    /// The status.
    pub status: u16,
    /// The fields, in order, as the origin sent them.
    pub fields: Fields,
    /// The body.
    pub body: Bytes,
    /// Freshness, validators and what purges look at.
    pub meta: Meta,
    /// The body compressed, in each coding a client asked for so far.
    pub encoded: Encodings,
}

/// What the cache knows of a stored response.
#[derive(Clone, Debug, Default)]
pub struct Meta {
    /// When the response arrived.
    pub response_time: Option<SystemTime>,
    /// Its age when it arrived (RFC 9111 §4.2.3).
    pub initial_age: Duration,
    /// How long it is fresh for, from its age 0.
    pub lifetime: Duration,
    /// `stale-while-revalidate`: how long after it goes stale it may be served while a fresh
    /// copy is fetched.
    pub stale_while_revalidate: Duration,
    /// `stale-if-error`: how long after it goes stale it may stand in for an origin error.
    pub stale_if_error: Duration,
    /// Stale copies must not be served without revalidation (must-revalidate,
    /// proxy-revalidate, s-maxage, no-cache).
    pub must_revalidate: bool,
    /// The ETag, as sent.
    pub etag: Option<Bytes>,
    /// The Last-Modified.
    pub last_modified: Option<SystemTime>,
    /// The Date.
    pub date: Option<SystemTime>,
    /// The zone it belongs to.
    pub zone: Box<str>,
    /// The URL it was stored for, `scheme://host/path?query` (what `files` purges match).
    pub url: Box<str>,
    /// The host (what `hosts` purges match).
    pub host: Box<str>,
    /// Its `Cache-Tag` values, lowercase (what `tags` purges match).
    pub tags: Box<[Box<str>]>,
    /// The request fields it varies on (lowercase names), from its Vary.
    pub vary: Box<[Box<str>]>,
}

/// A stored response's fields: every name and value in one buffer, and where each is in it
/// (12 bytes a field, where a pair of `Bytes` would take 64 and two allocations).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    block: Bytes,
    /// Where each name starts, where its value starts, where the value ends.
    spans: Box<[(u32, u32, u32)]>,
}

impl Fields {
    /// The fields `pairs`, in order.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Fields {
        let mut block = Vec::new();
        let mut spans = Vec::new();
        for (n, v) in pairs {
            let start = block.len() as u32;
            block.extend_from_slice(n);
            let mid = block.len() as u32;
            block.extend_from_slice(v);
            spans.push((start, mid, block.len() as u32));
        }
        Fields {
            block: Bytes::from(block),
            spans: spans.into_boxed_slice(),
        }
    }

    /// Each name and value, in order.
    pub fn iter(&self) -> FieldsIter<'_> {
        FieldsIter {
            block: &self.block,
            spans: self.spans.iter(),
        }
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = FieldsIter<'a>;
    fn into_iter(self) -> FieldsIter<'a> {
        self.iter()
    }
}

/// The fields of a stored response, in order.
#[derive(Clone, Debug)]
pub struct FieldsIter<'a> {
    block: &'a [u8],
    spans: std::slice::Iter<'a, (u32, u32, u32)>,
}

impl<'a> Iterator for FieldsIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let &(a, b, c) = self.spans.next()?;
        let (a, b, c) = (a as usize, b as usize, c as usize);
        Some((&self.block[a..b], &self.block[b..c]))
    }
}

/// Where a stored response stands in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Fresh.
    Fresh,
    /// Stale by this much.
    Stale(Duration),
}

impl Object {
    /// Its current age (RFC 9111 §4.2.3): the age it arrived with, plus how long it has been
    /// stored.
    pub fn age(&self, now: SystemTime) -> Duration {
        let resident = self
            .meta
            .response_time
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or(Duration::ZERO);
        self.meta.initial_age + resident
    }

    /// Fresh, or stale by how much.
    pub fn state(&self, now: SystemTime) -> State {
        let age = self.age(now);
        if age < self.meta.lifetime {
            State::Fresh
        } else {
            State::Stale(age - self.meta.lifetime)
        }
    }

    /// The value of the first field named `name`.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// Bytes this object holds in memory, roughly: body, fields, and what the store keeps
    /// for it.
    pub fn weight(&self) -> usize {
        const OVERHEAD: usize = 160;
        let fields: usize = self
            .fields
            .iter()
            .map(|(n, v)| n.len() + v.len() + 12)
            .sum();
        let meta = self.meta.url.len()
            + self.meta.host.len()
            + self.meta.zone.len()
            + self.meta.tags.iter().map(|t| t.len() + 16).sum::<usize>()
            + self.meta.vary.iter().map(|t| t.len() + 16).sum::<usize>();
        self.body.len() + fields + meta + OVERHEAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_and_state_follow_the_clock() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let o = Object {
            encoded: Default::default(),
            status: 200,
            fields: Fields::new([(&b"ETag"[..], &b"\"a\""[..])]),
            body: Bytes::new(),
            meta: Meta {
                response_time: Some(t0),
                initial_age: Duration::from_secs(5),
                lifetime: Duration::from_secs(60),
                ..Default::default()
            },
        };
        assert_eq!(o.age(t0), Duration::from_secs(5));
        assert_eq!(o.state(t0 + Duration::from_secs(54)), State::Fresh);
        assert_eq!(
            o.state(t0 + Duration::from_secs(65)),
            State::Stale(Duration::from_secs(10))
        );
        assert_eq!(o.field("etag"), Some(&b"\"a\""[..]));
    }
}
