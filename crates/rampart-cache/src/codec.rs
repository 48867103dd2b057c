//! A stored object as bytes, for the disk tier: its key and variant, its status, fields,
//! metadata and body, checked by a checksum, so that a torn or corrupt file is noticed and
//! never served.
//!
//! Layout: `MAGIC`, the head's length (u32), the head (key, variant, status, fields, meta),
//! the body's length (u64), the body, and an FNV-1a 64-bit checksum of everything before it.
//! Integers are little-endian; byte strings are a u32 length and the bytes. The head can be
//! read alone (to rebuild an index without reading bodies), and it says how long the whole
//! file must be.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::object::{Fields, Meta, Object};

/// The first bytes of every encoded object (the format's version is its last byte).
pub const MAGIC: &[u8; 8] = b"RMPCACH1";

/// Largest head a file may declare (keys, fields and tags are far smaller).
pub const MAX_HEAD: u32 = 1 << 20;

/// Why bytes are not an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// Not this format, or another version of it.
    NotAnObject,
    /// Shorter or longer than its head says: written partly, or appended to.
    Length {
        /// What the head says.
        expected: u64,
        /// What there is.
        found: u64,
    },
    /// The head does not parse.
    Malformed(&'static str),
    /// The checksum does not match: corrupt.
    Checksum,
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::NotAnObject => f.write_str("not a rampart cache object"),
            CodecError::Length { expected, found } => {
                write!(f, "{found} bytes where its head says {expected}")
            }
            CodecError::Malformed(what) => write!(f, "malformed head: {what}"),
            CodecError::Checksum => f.write_str("the checksum does not match"),
        }
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike std's hasher), and enough
/// to notice a torn write or a flipped bit.
pub fn fnv64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The object's head: what identifies it and what is known of it, without the body.
#[derive(Clone, Debug)]
pub struct Head {
    /// The cache key.
    pub key: String,
    /// The variant (the request's values of the fields the response varies on).
    pub secondary: Vec<u8>,
    /// The object, with an empty body.
    pub object: Object,
    /// The body's length.
    pub body_len: u64,
    /// The whole encoding's length.
    pub total_len: u64,
}

/// The bytes of `object`, stored under `key` for the variant `secondary`.
pub fn encode(key: &str, secondary: &[u8], object: &Object) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    put_bytes(&mut head, key.as_bytes());
    put_bytes(&mut head, secondary);
    head.extend_from_slice(&object.status.to_le_bytes());
    put_u32(&mut head, object.fields.len());
    for (n, v) in &object.fields {
        put_bytes(&mut head, n);
        put_bytes(&mut head, v);
    }
    let m = &object.meta;
    put_time(&mut head, m.response_time);
    for d in [
        m.initial_age,
        m.lifetime,
        m.stale_while_revalidate,
        m.stale_if_error,
    ] {
        head.extend_from_slice(&(d.as_millis() as u64).to_le_bytes());
    }
    head.push(u8::from(m.must_revalidate));
    match &m.etag {
        Some(e) => {
            head.push(1);
            put_bytes(&mut head, e);
        }
        None => head.push(0),
    }
    put_time(&mut head, m.last_modified);
    put_time(&mut head, m.date);
    for s in [&m.zone, &m.url, &m.host] {
        put_bytes(&mut head, s.as_bytes());
    }
    for list in [&m.tags, &m.vary] {
        put_u32(&mut head, list.len());
        for s in list.iter() {
            put_bytes(&mut head, s.as_bytes());
        }
    }
    let mut out = Vec::with_capacity(head.len() + object.body.len() + 32);
    out.extend_from_slice(MAGIC);
    put_u32(&mut out, head.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(&(object.body.len() as u64).to_le_bytes());
    out.extend_from_slice(&object.body);
    let sum = fnv64(&[&out]);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// The length of the head that `prefix` (the first 12 bytes of an encoding) announces.
pub fn head_len(prefix: &[u8]) -> Result<u32, CodecError> {
    if prefix.len() < 12 || &prefix[..8] != MAGIC {
        return Err(CodecError::NotAnObject);
    }
    let n = u32::from_le_bytes(prefix[8..12].try_into().unwrap_or_default());
    if n > MAX_HEAD {
        return Err(CodecError::Malformed("head too long"));
    }
    Ok(n)
}

/// Reads the head from the start of an encoding: at least `12 + head_len + 8` bytes.
pub fn decode_head(bytes: &[u8]) -> Result<Head, CodecError> {
    let n = head_len(bytes)? as usize;
    let mut r = Reader(bytes.get(12..12 + n).ok_or(CodecError::Length {
        expected: 12 + n as u64,
        found: bytes.len() as u64,
    })?);
    let key = String::from_utf8(r.bytes()?.to_vec()).map_err(|_| CodecError::Malformed("key"))?;
    let secondary = r.bytes()?.to_vec();
    let status = u16::from_le_bytes(r.take(2)?.try_into().unwrap_or_default());
    let count = r.u32()?;
    let mut pairs = Vec::with_capacity(count.min(256) as usize);
    for _ in 0..count {
        let name = r.bytes()?;
        pairs.push((name, r.bytes()?));
    }
    let fields = Fields::new(pairs);
    let response_time = r.time()?;
    let mut durations = [Duration::ZERO; 4];
    for d in &mut durations {
        *d = Duration::from_millis(r.u64()?);
    }
    let must_revalidate = r.take(1)?[0] == 1;
    let etag = match r.take(1)?[0] {
        0 => None,
        _ => Some(Bytes::copy_from_slice(r.bytes()?)),
    };
    let last_modified = r.time()?;
    let date = r.time()?;
    let zone = r.string()?;
    let url = r.string()?;
    let host = r.string()?;
    let mut lists: [Vec<Box<str>>; 2] = [Vec::new(), Vec::new()];
    for list in &mut lists {
        for _ in 0..r.u32()? {
            list.push(r.string()?);
        }
    }
    let [tags, vary] = lists;
    let rest = &bytes[12 + n..];
    let body_len = u64::from_le_bytes(
        rest.get(..8)
            .ok_or(CodecError::Malformed("no body length"))?
            .try_into()
            .unwrap_or_default(),
    );
    let [
        initial_age,
        lifetime,
        stale_while_revalidate,
        stale_if_error,
    ] = durations;
    Ok(Head {
        key,
        secondary,
        object: Object {
            encoded: Default::default(),
            status,
            fields,
            body: Bytes::new(),
            meta: Meta {
                response_time,
                initial_age,
                lifetime,
                stale_while_revalidate,
                stale_if_error,
                must_revalidate,
                etag,
                last_modified,
                date,
                zone,
                url,
                host,
                tags: tags.into_boxed_slice(),
                vary: vary.into_boxed_slice(),
            },
        },
        body_len,
        total_len: 12 + n as u64 + 8 + body_len + 8,
    })
}

/// The whole object from its whole encoding, its length and checksum checked.
pub fn decode(bytes: &[u8]) -> Result<Head, CodecError> {
    let mut head = decode_head(bytes)?;
    if bytes.len() as u64 != head.total_len {
        return Err(CodecError::Length {
            expected: head.total_len,
            found: bytes.len() as u64,
        });
    }
    let (content, sum) = bytes.split_at(bytes.len() - 8);
    if fnv64(&[content]).to_le_bytes() != sum {
        return Err(CodecError::Checksum);
    }
    let body_start = content.len() - head.body_len as usize;
    head.object.body = Bytes::copy_from_slice(&content[body_start..]);
    Ok(head)
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len());
    out.extend_from_slice(b);
}

/// A time as milliseconds since the epoch, 0 for none (or before the epoch).
fn put_time(out: &mut Vec<u8>, t: Option<SystemTime>) {
    let ms = t
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64);
    out.extend_from_slice(&ms.to_le_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::Malformed("ends early"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }
    fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<Box<str>, CodecError> {
        std::str::from_utf8(self.bytes()?)
            .map(Box::from)
            .map_err(|_| CodecError::Malformed("text"))
    }
    fn time(&mut self) -> Result<Option<SystemTime>, CodecError> {
        let ms = self.u64()?;
        Ok((ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object() -> Object {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        Object {
            encoded: Default::default(),
            status: 200,
            fields: Fields::new([
                (&b"Content-Type"[..], &b"text/css"[..]),
                (&b"ETag"[..], &b"\"v1\""[..]),
            ]),
            body: Bytes::from_static(b"body { color: red }"),
            meta: Meta {
                response_time: Some(t),
                initial_age: Duration::from_secs(3),
                lifetime: Duration::from_secs(300),
                stale_while_revalidate: Duration::from_secs(10),
                stale_if_error: Duration::from_secs(86_400),
                must_revalidate: true,
                etag: Some(Bytes::from_static(b"\"v1\"")),
                last_modified: Some(t - Duration::from_secs(60)),
                date: Some(t),
                zone: "z".into(),
                url: "https://a.test/app.css".into(),
                host: "a.test".into(),
                tags: vec![Box::from("assets")].into_boxed_slice(),
                vary: vec![Box::from("accept-encoding")].into_boxed_slice(),
            },
        }
    }

    #[test]
    fn an_object_comes_back_as_it_went() {
        let o = object();
        let bytes = encode("z\nkey", b"gzip\0", &o);
        let back = decode(&bytes).unwrap();
        assert_eq!(
            (back.key.as_str(), &back.secondary[..]),
            ("z\nkey", &b"gzip\0"[..])
        );
        assert_eq!(back.object.status, 200);
        assert_eq!(back.object.fields, o.fields);
        assert_eq!(back.object.body, o.body);
        let (a, b) = (&back.object.meta, &o.meta);
        assert_eq!(a.response_time, b.response_time);
        assert_eq!(
            (
                a.initial_age,
                a.lifetime,
                a.stale_while_revalidate,
                a.stale_if_error
            ),
            (
                b.initial_age,
                b.lifetime,
                b.stale_while_revalidate,
                b.stale_if_error
            )
        );
        assert_eq!(
            (a.must_revalidate, &a.etag, a.last_modified, a.date),
            (true, &b.etag, b.last_modified, b.date)
        );
        assert_eq!(
            (&a.zone, &a.url, &a.host, &a.tags, &a.vary),
            (&b.zone, &b.url, &b.host, &b.tags, &b.vary)
        );
        // The head alone is enough to index it.
        let head = decode_head(&bytes[..bytes.len() - o.body.len() - 8]).unwrap();
        assert_eq!(head.total_len, bytes.len() as u64);
        assert_eq!(head.body_len, o.body.len() as u64);
    }

    #[test]
    fn torn_corrupt_and_foreign_bytes_are_refused() {
        let bytes = encode("k", b"", &object());
        for cut in [0, 5, 12, 40, bytes.len() - 9, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(CodecError::Length { .. })));
        for at in [20, bytes.len() - 12, bytes.len() - 3] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x40;
            assert!(decode(&flipped).is_err(), "flipped at {at}");
        }
        assert_eq!(decode(b"GIF89a....").unwrap_err(), CodecError::NotAnObject);
    }
}
