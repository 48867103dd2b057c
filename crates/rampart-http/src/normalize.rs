//! URL path normalisation, as Cloudflare documents it: one spelling per path, so that a rule
//! written for `/secret` also sees `/%73ecret`, `//secret`, `/./secret` and `/x/../secret`.
//!
//! Both kinds, in this order:
//! 1. percent-decode the unreserved characters (`A-Z a-z 0-9 - . _ ~`); upper-case the hex
//!    digits of every other escape (`%2f` → `%2F`: an encoded slash stays encoded);
//! 2. percent-encode literal bytes that a URI does not allow (`" < > \ ^ ` { | }`, and every
//!    byte of a UTF-8 character), and a `%` that does not start an escape; the reserved
//!    characters `: / @ ! $ & ' ( ) * + , ; = [ ]` stay as they are;
//! 3. [`Normalization::Cloudflare`] only: `\` becomes `/` (instead of `%5C`), and runs of `/`
//!    become one;
//! 4. remove dot segments (RFC 3986 §5.2.4), including those that step 1 decoded
//!    (`%2e%2e`); a path never climbs above the root.
//!
//! The query is not touched, nor is case (apart from escapes). Normalising a normal path
//! changes nothing.

use std::borrow::Cow;

/// The kind of normalisation (Cloudflare's `url_normalization.type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Normalization {
    /// RFC 3986, plus `\` read as `/` and repeated slashes merged (Cloudflare's default).
    #[default]
    Cloudflare,
    /// RFC 3986 §6.2.2 syntax-based normalisation only.
    Rfc3986,
}

/// What a byte of a path becomes in step 2.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Kept as it is: unreserved, or reserved with a meaning of its own.
    Keep,
    /// Percent-encoded.
    Encode,
    /// `%`: an escape, or encoded when it does not start one.
    Percent,
    /// `\`: a separator for `Cloudflare`, encoded for `Rfc3986`.
    Backslash,
}

const fn class_of(b: u8) -> Class {
    match b {
        b'%' => Class::Percent,
        b'\\' => Class::Backslash,
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => Class::Keep,
        b':' | b'/' | b'@' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' => {
            Class::Keep
        }
        b';' | b'=' | b'[' | b']' => Class::Keep,
        _ => Class::Encode,
    }
}

static CLASS: [Class; 256] = {
    let mut t = [Class::Encode; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = class_of(i as u8);
        i += 1;
    }
    t
};

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_escaped(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
}

/// `path` normalised as `kind` says (see the module docs); borrowed when it is normal
/// already, which is the common case and costs one scan. A path that does not start with `/`
/// (`*`, or the empty path of authority-form) is returned as it is.
pub fn normalize_path(path: &str, kind: Normalization) -> Cow<'_, str> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') || is_normal(bytes, kind) {
        return Cow::Borrowed(path);
    }
    let mut out = Vec::with_capacity(bytes.len() + 8);
    transcode(bytes, kind, &mut out);
    let out = remove_dot_segments(&out);
    // Only ASCII is ever written: every other byte was percent-encoded.
    Cow::Owned(String::from_utf8(out).expect("a normalised path is ASCII"))
}

/// Whether `path` (starting with `/`) is already normal: only bytes that stay as they are,
/// escapes only of reserved bytes and in upper case, no dot segments, and for `Cloudflare` no
/// empty segments but a last one.
fn is_normal(path: &[u8], kind: Normalization) -> bool {
    let mut segment_start = 1;
    let mut i = 1;
    while i < path.len() {
        let b = path[i];
        match CLASS[usize::from(b)] {
            Class::Keep => {}
            Class::Percent if is_normal_escape(&path[i + 1..]) => {
                i += 3;
                continue;
            }
            _ => return false,
        }
        if b == b'/' {
            if !normal_segment(&path[segment_start..i], kind) {
                return false;
            }
            segment_start = i + 1;
        }
        i += 1;
    }
    !matches!(&path[segment_start..], b"." | b"..")
}

/// Whether `rest` starts with the two upper-case hex digits of a byte that is not unreserved.
fn is_normal_escape(rest: &[u8]) -> bool {
    match rest {
        [h, l, ..] if is_upper_hex(*h) && is_upper_hex(*l) => {
            let v = hex_value(*h).unwrap_or(0) << 4 | hex_value(*l).unwrap_or(0);
            !is_unreserved(v)
        }
        _ => false,
    }
}

fn is_upper_hex(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'A'..=b'F')
}

/// A segment followed by `/`: not a dot segment, and not empty for `Cloudflare`.
fn normal_segment(segment: &[u8], kind: Normalization) -> bool {
    match segment {
        b"." | b".." => false,
        b"" => kind == Normalization::Rfc3986,
        _ => true,
    }
}

/// Steps 1 to 3: escapes decoded or upper-cased, literal bytes encoded, and for `Cloudflare`
/// `\` as `/` and runs of `/` merged.
fn transcode(path: &[u8], kind: Normalization, out: &mut Vec<u8>) {
    let cloudflare = kind == Normalization::Cloudflare;
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        i += 1;
        let literal = match CLASS[usize::from(b)] {
            Class::Keep => b,
            Class::Encode => {
                push_escaped(out, b);
                continue;
            }
            Class::Backslash if cloudflare => b'/',
            Class::Backslash => {
                push_escaped(out, b);
                continue;
            }
            Class::Percent => {
                let escaped = path
                    .get(i..i + 2)
                    .and_then(|h| Some(hex_value(h[0])? << 4 | hex_value(h[1])?));
                let Some(v) = escaped else {
                    // A `%` that starts no escape stands for itself.
                    push_escaped(out, b'%');
                    continue;
                };
                i += 2;
                if !is_unreserved(v) {
                    push_escaped(out, v);
                    continue;
                }
                v
            }
        };
        if cloudflare && literal == b'/' && out.last() == Some(&b'/') {
            continue;
        }
        out.push(literal);
    }
}

/// RFC 3986 §5.2.4 on a path that starts with `/`: `.` segments go, and `..` removes the
/// segment before it (none above the root). A path that ends in a dot segment ends in `/`.
fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut segments = path[1..].split(|&b| b == b'/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            b"." => {}
            b".." => {
                kept.pop();
            }
            _ => {
                kept.push(segment);
                continue;
            }
        }
        if last {
            kept.push(b"");
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for segment in kept {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cf(p: &str) -> String {
        normalize_path(p, Normalization::Cloudflare).into_owned()
    }

    fn rfc(p: &str) -> String {
        normalize_path(p, Normalization::Rfc3986).into_owned()
    }

    #[test]
    fn the_bypass_spellings_all_become_the_one_path() {
        for p in [
            "/secret/file.txt",
            "/%73ecret/file.txt",
            "/%73%65%63%72%65%74/file.txt",
            "//secret/file.txt",
            "/./secret/file.txt",
            "/x/../secret/file.txt",
            "/x/%2e%2e/secret/file.txt",
            "/x/%2E%2e/secret/file.txt",
            "/x/.%2e/secret/file.txt",
            "/../secret/file.txt",
            "/../../secret/./file.txt",
            "/secret\\file.txt",
            "/secret//file.txt",
            "/secret/x/y/../../file.txt",
        ] {
            assert_eq!(cf(p), "/secret/file.txt", "{p}");
        }
    }

    #[test]
    fn escapes_are_decoded_when_unreserved_and_upper_cased_otherwise() {
        assert_eq!(cf("/%68ello"), "/hello");
        assert_eq!(cf("/a%2fb"), "/a%2Fb", "an encoded slash stays encoded");
        assert_eq!(cf("/a%2F..%2Fb"), "/a%2F..%2Fb", "and is no separator");
        assert_eq!(cf("/%7e%5F%2D%2e"), "/~_-.");
        assert_eq!(cf("/%3a%40%25"), "/%3A%40%25");
        assert_eq!(cf("/%zz"), "/%25zz", "a lone % stands for itself");
        assert_eq!(cf("/100%"), "/100%25");
        assert_eq!(cf("/Secret"), "/Secret", "case is kept");
    }

    #[test]
    fn literal_bytes_are_encoded_and_reserved_ones_kept() {
        assert_eq!(cf("/a|b^c`d{e}\"<>"), "/a%7Cb%5Ec%60d%7Be%7D%22%3C%3E");
        assert_eq!(cf("/café"), "/caf%C3%A9");
        assert_eq!(cf("/a[1]:@!$&'()*+,;="), "/a[1]:@!$&'()*+,;=");
    }

    #[test]
    fn the_kinds_differ_on_backslashes_and_repeated_slashes() {
        // Cloudflare's own example: example.com/%68ello//pa\th.
        assert_eq!(cf("/%68ello//pa\\th"), "/hello/pa/th");
        assert_eq!(rfc("/%68ello//pa\\th"), "/hello//pa%5Cth");
        assert_eq!(rfc("/a/..//b"), "//b");
        assert_eq!(cf("/a/..//b"), "/b");
        assert_eq!(cf("/a//../b"), "/b", "slashes merge before dot segments go");
    }

    #[test]
    fn dot_segments_go_and_the_root_is_never_left() {
        for (p, want) in [
            ("/a/b/c/./../../g", "/a/g"),
            ("/a/..", "/"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/..", "/"),
            ("/../..", "/"),
            ("/.", "/"),
            ("/a/...", "/a/..."),
            ("/a/..b/.c", "/a/..b/.c"),
            ("/", "/"),
        ] {
            assert_eq!(cf(p), want, "{p}");
            assert_eq!(rfc(p), want, "{p}");
        }
    }

    #[test]
    fn normal_paths_are_borrowed_and_others_are_not_targets_of_it() {
        for p in ["/", "/a/b.html", "/a/", "/a[1]/b;c=d", "/a%2Fb%25", "*", ""] {
            assert!(
                matches!(
                    normalize_path(p, Normalization::Cloudflare),
                    Cow::Borrowed(_)
                ),
                "{p}"
            );
        }
        assert!(matches!(
            normalize_path("/a//b", Normalization::Rfc3986),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            normalize_path("/a//b", Normalization::Cloudflare),
            Cow::Owned(_)
        ));
    }

    /// Normalising twice gives what normalising once gives, the result is normal by the fast
    /// check, it never climbs above the root, and it is plain ASCII: for random paths over
    /// an alphabet of the characters that matter.
    #[test]
    fn normalising_is_idempotent_on_random_paths() {
        let alphabet: &[&str] = &[
            "/", "/", ".", "..", "%2e", "%2E", "%2f", "%41", "%zz", "%", "\\", "a", "b", "é", "|",
            "%25", "~", ";",
        ];
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            crate::xorshift(&mut rng);
            let len = (rng % 12) as usize;
            let mut p = String::from("/");
            for i in 0..len {
                let r = rng.rotate_left(i as u32 * 5) as usize;
                p.push_str(alphabet[r % alphabet.len()]);
            }
            for kind in [Normalization::Cloudflare, Normalization::Rfc3986] {
                let once = normalize_path(&p, kind).into_owned();
                assert!(
                    once.is_ascii() && once.starts_with('/'),
                    "{p:?} -> {once:?}"
                );
                assert!(
                    is_normal(once.as_bytes(), kind),
                    "{p:?} -> {once:?} {kind:?}"
                );
                assert_eq!(normalize_path(&once, kind), once, "{p:?} {kind:?}");
                assert!(!once.split('/').any(|s| s == ".."), "{p:?} -> {once:?}");
            }
        }
    }
}
