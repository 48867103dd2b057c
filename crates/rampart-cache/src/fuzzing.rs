//! Entry points for the fuzz targets in `fuzz/` (run with `scripts/fuzz`).

use std::time::{Duration, UNIX_EPOCH};

use crate::conditional::{self, Conditions, Validators};
use crate::range::{self, Ranges};

/// Any bytes as the cache's untrusted inputs: a disk file (decoded: an error or an object
/// whose lengths agree, never a panic), a Range field against any length (ranges inside the
/// body, in order, at most [`range::MAX_RANGES`]), and preconditions against validators made
/// of the same bytes.
pub fn fuzz_cache_inputs(data: &[u8]) {
    if let Ok(head) = crate::codec::decode(data) {
        assert_eq!(head.total_len, data.len() as u64);
        assert_eq!(head.object.body.len() as u64, head.body_len);
    }
    let _ = crate::codec::decode_head(data);
    let (length, value) = match data.split_first() {
        Some((&n, rest)) => (u64::from(n) * 37, rest),
        None => (0, data),
    };
    if let Ranges::Satisfiable(ranges) = range::parse(value, length) {
        assert!(!ranges.is_empty() && ranges.len() <= range::MAX_RANGES);
        for r in &ranges {
            assert!(r.first <= r.last && r.last < length, "{r:?} of {length}");
        }
        let body = vec![b'x'; length as usize];
        let _ = range::multipart(&body, &ranges, Some(b"text/plain"), "b");
    }
    let mid = data.len() / 2;
    let (a, b) = data.split_at(mid);
    let conditions = Conditions {
        if_match: Some(a),
        if_none_match: Some(b),
        if_modified_since: Some(a),
        if_unmodified_since: Some(b),
        if_range: Some(a),
    };
    let t = UNIX_EPOCH + Duration::from_secs(u64::from(data.first().copied().unwrap_or(0)) << 20);
    let validators = Validators {
        etag: Some(b),
        last_modified: Some(t),
        date: Some(t + Duration::from_secs(5)),
    };
    let _ = conditional::evaluate(&conditions, &validators, true);
    let _ = conditional::range_applies(&conditions, &validators);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzz_entry_point_takes_the_seeds() {
        let object = crate::object::Object {
            status: 200,
            fields: Default::default(),
            body: bytes::Bytes::from_static(b"hello"),
            meta: Default::default(),
            encoded: Default::default(),
        };
        let encoded = crate::codec::encode("k", b"", &object);
        for seed in [
            &b"\x10bytes=0-9,20-,-5"[..],
            b"\x01W/\"a\", \"b\"",
            &encoded,
            &encoded[..encoded.len() - 1],
            b"",
        ] {
            fuzz_cache_inputs(seed);
        }
    }
}
