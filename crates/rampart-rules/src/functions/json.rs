//! `lookup_json_string` and `lookup_json_integer`.

use serde_json::Value as Json;

use crate::exec::Val;

/// Follows `keys` (object member names or array positions) into `doc`.
/// serde_json bounds nesting (128 levels), so hostile bodies cannot
/// exhaust the stack.
fn lookup(doc: &[u8], keys: &[Val<'_>]) -> Option<Json> {
    let mut v: Json = serde_json::from_slice(doc).ok()?;
    for k in keys {
        v = match k {
            Val::Bytes(name) => v.get_mut(std::str::from_utf8(name).ok()?)?.take(),
            Val::Int(i) => v.get_mut(usize::try_from(*i).ok()?)?.take(),
            _ => return None,
        };
    }
    Some(v)
}

pub(crate) fn lookup_string(doc: &[u8], keys: &[Val<'_>]) -> Option<Vec<u8>> {
    match lookup(doc, keys)? {
        Json::String(s) => Some(s.into_bytes()),
        _ => None,
    }
}

/// Only plain integers: `42.0` is not an integer.
pub(crate) fn lookup_integer(doc: &[u8], keys: &[Val<'_>]) -> Option<i64> {
    match lookup(doc, keys)? {
        Json::Number(n) => n.as_i64(),
        _ => None,
    }
}
