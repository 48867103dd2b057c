//! A parsed head's bytes and the index of its fields, kept in one allocation.

use std::fmt;

use crate::chars::{field_value_prefix_len, token_prefix_len};

/// Where a field's name and value are in a head's bytes: `((name start, end), (value start, end))`.
pub(crate) type FieldSpan = ((u32, u32), (u32, u32));

/// The field spans of a head while it is parsed: inline up to 16 fields (most requests).
pub(crate) type FieldSpans = smallvec::SmallVec<[FieldSpan; 16]>;

/// The ranges of a head's Connection options: inline for the usual one or two.
pub(crate) type Tokens = smallvec::SmallVec<[(u32, u32); 2]>;

/// Whether one of the `tokens` (ranges of `buf`) is `token`, ASCII case-insensitively.
pub(crate) fn has_token(buf: &[u8], tokens: &[(u32, u32)], token: &[u8]) -> bool {
    tokens
        .iter()
        .any(|&(s, e)| buf[s as usize..e as usize].eq_ignore_ascii_case(token))
}

/// How the lines of a field section may end.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineEnds {
    /// CRLF only (requests: a bare LF is a 400).
    CrLf,
    /// CRLF or a bare LF (responses: RFC 9112 §2.2 lets a recipient accept bare LF).
    CrLfOrLf,
}

/// Why a field section was refused; offsets are within the section.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FieldsError {
    /// A line broke the field syntax at this offset, for the reason given.
    Malformed(usize, &'static str),
    /// A line ended with a bare LF where only CRLF is allowed.
    BareLineFeed(usize),
    /// The field starting here is one more than the limit.
    TooMany(usize),
}

/// Tokenises field lines (RFC 9112 §5): `name ":" OWS value OWS` and a line end, until the
/// empty line. Spans go straight into `out`, offset by `base` (where `fields` starts in the
/// head); a value's trailing SP/HTAB is not part of it. Returns the bytes consumed through the
/// empty line, or `None` while the section is incomplete and nothing seen so far is invalid.
///
/// Names are tokens; values are field bytes (RFC 9110 §5.5: visible, SP, HTAB, obs-text). A
/// line that starts with whitespace (obsolete folding) is malformed. It accepts what httparse
/// accepts (bare LF only with [`LineEnds::CrLfOrLf`]); both uses are tested against it.
#[inline]
pub(crate) fn tokenize(
    fields: &[u8],
    base: usize,
    max_fields: usize,
    ends: LineEnds,
    out: &mut FieldSpans,
) -> Result<Option<usize>, FieldsError> {
    let bare_lf = |at: usize, next: usize| match ends {
        LineEnds::CrLfOrLf => Ok(next),
        LineEnds::CrLf => Err(FieldsError::BareLineFeed(at)),
    };
    let mut pos = 0;
    loop {
        match fields.get(pos) {
            None => return Ok(None),
            Some(b'\r') => {
                return match fields.get(pos + 1) {
                    None => Ok(None),
                    Some(b'\n') => Ok(Some(pos + 2)),
                    Some(_) => Err(FieldsError::Malformed(pos, "CR without LF")),
                };
            }
            Some(b'\n') => return bare_lf(pos, pos + 1).map(Some),
            Some(_) => {}
        }
        let ns = pos;
        pos += token_prefix_len(&fields[pos..]);
        match fields.get(pos) {
            None => return Ok(None),
            Some(b':') if pos > ns => {}
            Some(_) => {
                return Err(FieldsError::Malformed(
                    pos,
                    "a field name that is not a token",
                ));
            }
        }
        let ne = pos;
        pos += 1;
        while matches!(fields.get(pos), Some(b' ' | b'\t')) {
            pos += 1;
        }
        let vs = pos;
        // The value runs to the first byte not allowed in one, which must end the line.
        let line_end = vs + field_value_prefix_len(&fields[vs..]);
        let next = match fields.get(line_end) {
            None => return Ok(None),
            Some(b'\r') => match fields.get(line_end + 1) {
                None => return Ok(None),
                Some(b'\n') => line_end + 2,
                Some(_) => return Err(FieldsError::Malformed(line_end, "CR without LF")),
            },
            Some(b'\n') => bare_lf(line_end, line_end + 1)?,
            Some(_) => {
                return Err(FieldsError::Malformed(
                    line_end,
                    "a control byte in a field value",
                ));
            }
        };
        if out.len() == max_fields {
            return Err(FieldsError::TooMany(ns));
        }
        let mut ve = line_end;
        while ve > vs && matches!(fields[ve - 1], b' ' | b'\t') {
            ve -= 1;
        }
        out.push((
            ((base + ns) as u32, (base + ne) as u32),
            ((base + vs) as u32, (base + ve) as u32),
        ));
        pos = next;
    }
}

/// Bytes per field in the index: four little-endian `u32` offsets.
const ENTRY: usize = 16;

/// A head's bytes followed by the index of its fields. One allocation per parsed head, and
/// the structs holding one stay small (an inline array of spans made a request head 400
/// bytes, copied each time it was moved).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct HeadBytes {
    data: Box<[u8]>,
    len: u32,
}

impl HeadBytes {
    /// Copies `head` and the index of `fields` (spans within `head`).
    pub(crate) fn new(head: &[u8], fields: &[FieldSpan]) -> HeadBytes {
        let mut data = Vec::with_capacity(head.len() + fields.len() * ENTRY);
        data.extend_from_slice(head);
        for &((ns, ne), (vs, ve)) in fields {
            let mut entry = [0u8; ENTRY];
            for (dst, n) in entry.chunks_exact_mut(4).zip([ns, ne, vs, ve]) {
                dst.copy_from_slice(&n.to_le_bytes());
            }
            data.extend_from_slice(&entry);
        }
        HeadBytes {
            data: data.into_boxed_slice(),
            len: head.len() as u32,
        }
    }

    /// The head as received.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }

    /// Every field, in order.
    pub(crate) fn fields(&self) -> Headers<'_> {
        let (bytes, index) = self.data.split_at(self.len as usize);
        Headers {
            bytes,
            index: index.chunks_exact(ENTRY),
        }
    }

    /// How many fields the head has.
    pub(crate) fn field_count(&self) -> usize {
        (self.data.len() - self.len as usize) / ENTRY
    }
}

impl fmt::Debug for HeadBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.bytes()))
    }
}

/// The fields of a head, in order: `(name as sent, value)`.
pub struct Headers<'a> {
    bytes: &'a [u8],
    index: std::slice::ChunksExact<'a, u8>,
}

impl<'a> Headers<'a> {
    /// The first remaining field named `name` (ASCII case-insensitive).
    pub fn get(self, name: &str) -> Option<&'a [u8]> {
        self.raw()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The same fields with their names as bytes: what is written or compared need not
    /// be checked as UTF-8 on every visit (names are ASCII tokens either way).
    pub fn raw(self) -> RawHeaders<'a> {
        RawHeaders(self)
    }

    fn next_raw(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        let entry = self.index.next()?;
        let at = |i: usize| {
            let mut n = [0u8; 4];
            n.copy_from_slice(&entry[i..i + 4]);
            u32::from_le_bytes(n) as usize
        };
        Some((&self.bytes[at(0)..at(4)], &self.bytes[at(8)..at(12)]))
    }
}

/// The fields of a head, in order: `(name as sent, value)`, both as bytes.
pub struct RawHeaders<'a>(Headers<'a>);

impl<'a> Iterator for RawHeaders<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_raw()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for RawHeaders<'_> {}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let (name, value) = self.next_raw()?;
        // Field names are tokens, which are ASCII.
        Some((std::str::from_utf8(name).unwrap_or(""), value))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.index.size_hint()
    }
}

impl ExactSizeIterator for Headers<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_gives_back_the_spans() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: vvvvv\r\n\r\n";
        let spans = [((16, 20), (22, 23)), ((25, 31), (33, 38))];
        let h = HeadBytes::new(head, &spans);
        assert_eq!(h.bytes(), head);
        assert_eq!(h.field_count(), 2);
        let fields: Vec<_> = h.fields().collect();
        assert_eq!(fields, [("Host", &b"a"[..]), ("X-Long", &b"vvvvv"[..])]);
        assert_eq!(h.fields().get("x-long"), Some(&b"vvvvv"[..]));
        assert_eq!(HeadBytes::new(head, &[]).fields().count(), 0);
    }
}
