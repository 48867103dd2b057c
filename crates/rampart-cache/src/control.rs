//! `Cache-Control` (RFC 9111 §5.2): the response directives a shared cache obeys.
//!
//! Every value of every `Cache-Control` line is read, as one comma-separated list (RFC 9110
//! §5.3). Directive names are case-insensitive; an argument is a token or a quoted string. A
//! delta-seconds argument that is not a number makes the directive count as if it said 0
//! (RFC 9111 §1.2.2: "a cache ... SHOULD consider the response stale"), and a value too large
//! is taken as 2^31 seconds (§1.2.2). When a directive appears twice, the first counts.

/// Largest delta-seconds kept (RFC 9111 §1.2.2: 2^31, about 68 years).
pub const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// The response directives that decide whether and how long a shared cache keeps a response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseDirectives {
    /// `max-age`.
    pub max_age: Option<u64>,
    /// `s-maxage` (a shared cache's own max-age; it also implies `proxy-revalidate`).
    pub s_maxage: Option<u64>,
    /// `no-store`.
    pub no_store: bool,
    /// `no-cache` (with or without field names: rampart treats both as "revalidate every
    /// time", which a shared cache may, §5.2.2.4).
    pub no_cache: bool,
    /// `private` (with or without field names: a shared cache does not store it).
    pub private: bool,
    /// `public`.
    pub public: bool,
    /// `must-revalidate`.
    pub must_revalidate: bool,
    /// `proxy-revalidate`.
    pub proxy_revalidate: bool,
    /// `stale-while-revalidate` (RFC 5861).
    pub stale_while_revalidate: Option<u64>,
    /// `stale-if-error` (RFC 5861).
    pub stale_if_error: Option<u64>,
    /// `no-transform`: the body is not compressed at the edge.
    pub no_transform: bool,
}

impl ResponseDirectives {
    /// The directives of every `Cache-Control` value in `values`.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> ResponseDirectives {
        let mut d = ResponseDirectives::default();
        for value in values {
            for (name, arg) in directives(value) {
                d.apply(name, arg);
            }
        }
        d
    }

    fn apply(&mut self, name: &[u8], arg: Option<&[u8]>) {
        let seconds = |slot: &mut Option<u64>| {
            if slot.is_none() {
                *slot = Some(arg.map_or(0, delta_seconds));
            }
        };
        match name.to_ascii_lowercase().as_slice() {
            b"max-age" => seconds(&mut self.max_age),
            b"s-maxage" => seconds(&mut self.s_maxage),
            b"stale-while-revalidate" => seconds(&mut self.stale_while_revalidate),
            b"stale-if-error" => seconds(&mut self.stale_if_error),
            b"no-store" => self.no_store = true,
            b"no-cache" => self.no_cache = true,
            b"private" => self.private = true,
            b"public" => self.public = true,
            b"must-revalidate" => self.must_revalidate = true,
            b"proxy-revalidate" => self.proxy_revalidate = true,
            b"no-transform" => self.no_transform = true,
            _ => {}
        }
    }

    /// Whether a stale copy must not be served without revalidating it first (§4.2.4,
    /// §5.2.2.2, §5.2.2.8, §5.2.2.10).
    pub fn must_revalidate_when_stale(&self) -> bool {
        self.must_revalidate || self.proxy_revalidate || self.s_maxage.is_some()
    }
}

/// delta-seconds: digits; anything else counts as 0, a huge value as 2^31.
fn delta_seconds(arg: &[u8]) -> u64 {
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    arg.iter()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .map_or(MAX_DELTA_SECONDS, |n| n.min(MAX_DELTA_SECONDS))
}

/// The `name[=argument]` items of one Cache-Control value, quotes removed from a quoted
/// argument (its escapes kept: no argument rampart reads has any).
pub fn directives(value: &[u8]) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
    Items { rest: value }
}

struct Items<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Items<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let start = self
                .rest
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b','))?;
            let rest = &self.rest[start..];
            let name_end = rest
                .iter()
                .position(|b| matches!(b, b'=' | b',' | b' ' | b'\t'))
                .unwrap_or(rest.len());
            let name = &rest[..name_end];
            let mut after = rest[name_end..].trim_ascii_start();
            let mut arg = None;
            if let Some(value) = after.strip_prefix(b"=") {
                let value = value.trim_ascii_start();
                let (a, tail) = argument(value);
                arg = Some(a);
                after = tail;
            }
            // Skip to the next comma (past anything malformed).
            let next = after
                .iter()
                .position(|&b| b == b',')
                .map_or(after.len(), |i| i + 1);
            self.rest = &after[next..];
            if !name.is_empty() {
                return Some((name, arg));
            }
        }
    }
}

/// A token or quoted-string argument, and what follows it.
fn argument(value: &[u8]) -> (&[u8], &[u8]) {
    if let Some(quoted) = value.strip_prefix(b"\"") {
        let mut i = 0;
        while i < quoted.len() {
            match quoted[i] {
                b'\\' => i += 2,
                b'"' => return (&quoted[..i], &quoted[i + 1..]),
                _ => i += 1,
            }
        }
        return (quoted, &[]);
    }
    let end = value
        .iter()
        .position(|b| matches!(b, b',' | b' ' | b'\t'))
        .unwrap_or(value.len());
    (&value[..end], &value[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> ResponseDirectives {
        ResponseDirectives::parse([v.as_bytes()])
    }

    #[test]
    fn directives_are_read_case_insensitively_with_their_arguments() {
        let d = parse(
            "Public, MAX-AGE=60, s-maxage=\"120\", stale-while-revalidate=30,stale-if-error=600",
        );
        assert!(d.public);
        assert_eq!(d.max_age, Some(60));
        assert_eq!(d.s_maxage, Some(120));
        assert_eq!(d.stale_while_revalidate, Some(30));
        assert_eq!(d.stale_if_error, Some(600));
        assert!(
            d.must_revalidate_when_stale(),
            "s-maxage implies proxy-revalidate"
        );
        let d = parse("private=\"set-cookie, x\", no-cache=\"a\", no-store, no-transform");
        assert!(d.private && d.no_cache && d.no_store && d.no_transform);
    }

    #[test]
    fn bad_and_repeated_numbers_are_handled_as_rfc_9111_says() {
        assert_eq!(parse("max-age=abc").max_age, Some(0), "invalid: stale");
        assert_eq!(parse("max-age").max_age, Some(0));
        assert_eq!(parse("max-age=-5").max_age, Some(0));
        assert_eq!(
            parse("max-age=99999999999999999999999").max_age,
            Some(MAX_DELTA_SECONDS)
        );
        assert_eq!(
            parse("max-age=10, max-age=20").max_age,
            Some(10),
            "the first counts"
        );
        let d = ResponseDirectives::parse([&b"max-age=5"[..], b"no-cache"]);
        assert_eq!(
            (d.max_age, d.no_cache),
            (Some(5), true),
            "every line is read"
        );
        assert_eq!(parse(" , ,, max-age=7 ,").max_age, Some(7));
        assert_eq!(
            parse("foo=\"a,b\", max-age=3").max_age,
            Some(3),
            "commas in quotes"
        );
    }
}
