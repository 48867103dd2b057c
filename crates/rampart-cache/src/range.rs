//! Range requests against a stored body (RFC 9110 §14): 206 with one range or
//! `multipart/byteranges`, 416 for a range set none of whose ranges is satisfiable.

/// One satisfiable range: `first..=last`, within the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub first: u64,
    /// Last byte (inclusive).
    pub last: u64,
}

impl ByteRange {
    /// Bytes in the range.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never empty: a range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// `bytes FIRST-LAST/LENGTH` (Content-Range).
    pub fn content_range(&self, length: u64) -> String {
        format!("bytes {}-{}/{length}", self.first, self.last)
    }
}

/// Most ranges served in one response; a request with more gets the whole body (as nginx's
/// `max_ranges` does: a long list of small ranges costs far more than it saves).
pub const MAX_RANGES: usize = 16;

/// What a Range field asks of a body of a known length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ranges {
    /// Serve the whole body (200): not a byte range, not valid, overlapping ranges, or more
    /// than [`MAX_RANGES`] (RFC 9110 §14.2: a server may ignore Range).
    Whole,
    /// Serve these ranges (206), in the order asked.
    Satisfiable(Vec<ByteRange>),
    /// 416, with `Content-Range: bytes */LENGTH`.
    Unsatisfiable,
}

/// Reads a Range field for a body of `length` bytes.
pub fn parse(value: &[u8], length: u64) -> Ranges {
    let Some(eq) = value.iter().position(|&b| b == b'=') else {
        return Ranges::Whole;
    };
    if !value[..eq].trim_ascii().eq_ignore_ascii_case(b"bytes") {
        return Ranges::Whole;
    }
    let mut ranges = Vec::new();
    let mut any = false;
    for spec in value[eq + 1..].split(|&b| b == b',') {
        let spec = spec.trim_ascii();
        if spec.is_empty() {
            continue;
        }
        any = true;
        let Some(dash) = spec.iter().position(|&b| b == b'-') else {
            return Ranges::Whole;
        };
        let (first, last) = (&spec[..dash], &spec[dash + 1..]);
        let range = match (number(first), number(last)) {
            // -SUFFIX: the last SUFFIX bytes.
            (None, Some(suffix)) if first.is_empty() => {
                (suffix > 0 && length > 0).then(|| ByteRange {
                    first: length - suffix.min(length),
                    last: length - 1,
                })
            }
            // FIRST-
            (Some(f), None) if last.is_empty() => (f < length).then(|| ByteRange {
                first: f,
                last: length - 1,
            }),
            // FIRST-LAST
            (Some(f), Some(l)) if f <= l => (f < length).then(|| ByteRange {
                first: f,
                last: l.min(length - 1),
            }),
            _ => return Ranges::Whole,
        };
        ranges.extend(range);
    }
    if !any {
        return Ranges::Whole;
    }
    if ranges.is_empty() {
        return Ranges::Unsatisfiable;
    }
    if ranges.len() > MAX_RANGES || overlapping(&ranges) {
        return Ranges::Whole;
    }
    Ranges::Satisfiable(ranges)
}

/// Digits, as a number (`None` for anything else, or a number past u64).
fn number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

fn overlapping(ranges: &[ByteRange]) -> bool {
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.first);
    sorted.windows(2).any(|w| w[1].first <= w[0].last)
}

/// A `multipart/byteranges` body (RFC 9110 §14.6) of `ranges` of `body`, each part with the
/// body's Content-Type (if any) and its Content-Range, separated by `boundary`.
pub fn multipart(
    body: &[u8],
    ranges: &[ByteRange],
    content_type: Option<&[u8]>,
    boundary: &str,
) -> Vec<u8> {
    let length = body.len() as u64;
    let mut out = Vec::with_capacity(ranges.iter().map(|r| r.len() as usize + 96).sum());
    for r in ranges {
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(ct) = content_type {
            out.extend_from_slice(b"Content-Type: ");
            out.extend_from_slice(ct);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Range: ");
        out.extend_from_slice(r.content_range(length).as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&body[r.first as usize..=r.last as usize]);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"--\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(first: u64, last: u64) -> ByteRange {
        ByteRange { first, last }
    }

    #[test]
    fn ranges_of_every_form_are_read_and_clamped() {
        assert_eq!(parse(b"bytes=0-9", 100), Ranges::Satisfiable(vec![r(0, 9)]));
        assert_eq!(
            parse(b"bytes=90-", 100),
            Ranges::Satisfiable(vec![r(90, 99)])
        );
        assert_eq!(
            parse(b"bytes=-10", 100),
            Ranges::Satisfiable(vec![r(90, 99)])
        );
        assert_eq!(
            parse(b"bytes=-500", 100),
            Ranges::Satisfiable(vec![r(0, 99)])
        );
        assert_eq!(
            parse(b"bytes=50-500", 100),
            Ranges::Satisfiable(vec![r(50, 99)])
        );
        assert_eq!(
            parse(b"Bytes = 0-0, 5-6", 100),
            Ranges::Satisfiable(vec![r(0, 0), r(5, 6)])
        );
        assert_eq!(
            parse(b"bytes=0-1,200-300", 100),
            Ranges::Satisfiable(vec![r(0, 1)]),
            "an unsatisfiable range among satisfiable ones is dropped"
        );
    }

    #[test]
    fn unsatisfiable_and_ignored_ranges() {
        assert_eq!(parse(b"bytes=100-", 100), Ranges::Unsatisfiable);
        assert_eq!(parse(b"bytes=100-200", 100), Ranges::Unsatisfiable);
        assert_eq!(parse(b"bytes=-0", 100), Ranges::Unsatisfiable);
        assert_eq!(parse(b"bytes=0-", 0), Ranges::Unsatisfiable);
        for ignored in [
            &b"items=0-5"[..],
            b"bytes=5-1",
            b"bytes=a-b",
            b"bytes=",
            b"bytes=0-9,5-20",
            b"bytes 0-9",
            b"bytes=--5",
        ] {
            assert_eq!(
                parse(ignored, 100),
                Ranges::Whole,
                "{:?}",
                String::from_utf8_lossy(ignored)
            );
        }
        let many: String = (0..=MAX_RANGES)
            .map(|i| format!("{}-{},", i * 2, i * 2))
            .collect();
        assert_eq!(
            parse(format!("bytes={many}").as_bytes(), 1_000),
            Ranges::Whole
        );
    }

    #[test]
    fn a_multipart_body_has_each_part_with_its_content_range() {
        let body = b"0123456789";
        let out = multipart(body, &[r(0, 1), r(8, 9)], Some(b"text/plain"), "B");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01\r\n\
             --B\r\nContent-Type: text/plain\r\nContent-Range: bytes 8-9/10\r\n\r\n89\r\n--B--\r\n"
        );
    }
}
