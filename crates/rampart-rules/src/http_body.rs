//! What the rules read from a request body: form fields, multipart parts and the type its
//! first bytes show. Everything borrows from the body; a body cut short at the inspection
//! limit gives what its bytes hold (the last part's value ends where the bytes end).

use std::borrow::Cow;

use crate::http_request::push;
use crate::types::{MapValue, Value};

/// `b` split at the first `sep` (the second part empty without one).
pub(crate) fn split_once(b: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match b.iter().position(|c| *c == sep) {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[b.len()..]),
    }
}

/// `name=value` pairs separated by `&`, as in a query or a urlencoded form; not decoded.
pub(crate) fn pairs(b: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    b.split(|c| *c == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| split_once(p, b'='))
}

/// One part of a multipart body.
#[derive(Debug, Default)]
pub(crate) struct Part<'a> {
    /// `name` parameters of its Content-Disposition fields.
    pub names: Vec<&'a [u8]>,
    /// `filename` parameters of its Content-Disposition fields.
    pub filenames: Vec<&'a [u8]>,
    /// Its Content-Type values.
    pub content_types: Vec<&'a [u8]>,
    /// Its Content-Disposition values.
    pub dispositions: Vec<&'a [u8]>,
    /// Its Content-Transfer-Encoding values.
    pub transfer_encodings: Vec<&'a [u8]>,
    /// Its content.
    pub value: &'a [u8],
}

/// The parts of a multipart body (RFC 2046 §5.1, RFC 7578).
#[derive(Debug, Default)]
pub(crate) struct Multipart<'a> {
    pub parts: Vec<Part<'a>>,
}

impl<'a> Multipart<'a> {
    /// The parts of `body`, delimited by the `boundary` parameter found in `params` (the
    /// Content-Type's parameters); none without one. Lines may end in CRLF or LF.
    pub fn parse(body: &'a [u8], params: &[u8]) -> Multipart<'a> {
        let Some(boundary) = param(params, b"boundary") else {
            return Multipart::default();
        };
        let mut delimiter = b"--".to_vec();
        delimiter.extend_from_slice(&boundary);
        let mut parts = Vec::new();
        // The first delimiter may open the body; later ones follow a line break.
        let Some(mut at) = find_delimiter(body, &delimiter, true) else {
            return Multipart::default();
        };
        loop {
            let after = &body[at + delimiter.len()..];
            if after.starts_with(b"--") {
                break;
            }
            // The rest of the delimiter line (transport padding) is ignored.
            let Some(line_end) = after.iter().position(|&b| b == b'\n') else {
                break;
            };
            let start = at + delimiter.len() + line_end + 1;
            let next = find_delimiter(&body[start..], &delimiter, false).map(|i| start + i);
            let end = next.map_or(body.len(), |n| trim_line_break(body, start, n));
            parts.push(part(&body[start..end]));
            match next {
                Some(n) => at = n,
                None => break,
            }
        }
        Multipart { parts }
    }

    /// `http.request.body.multipart`: each part's name to its values.
    pub fn map(self) -> Value<'a> {
        let mut map = MapValue::new();
        for p in self.parts {
            for name in &p.names {
                push(&mut map, Cow::Borrowed(*name), Cow::Borrowed(p.value));
            }
        }
        Value::Map(map)
    }

    /// An array with, for each part, the array `what` picks from it.
    pub fn each(self, what: impl for<'p> Fn(&'p Part<'a>) -> &'p Vec<&'a [u8]>) -> Value<'a> {
        Value::Array(
            self.parts
                .iter()
                .map(|p| Value::Array(what(p).iter().map(|v| Value::from(*v)).collect()))
                .collect(),
        )
    }
}

/// Where the next delimiter line starts in `body`: `delimiter` at the start of a line (or of
/// the body, when `at_start`), the line break before it not counted.
fn find_delimiter(body: &[u8], delimiter: &[u8], at_start: bool) -> Option<usize> {
    if at_start && body.starts_with(delimiter) {
        return Some(0);
    }
    let mut from = 0;
    while let Some(i) = find(&body[from..], delimiter) {
        let i = from + i;
        if i > 0 && body[i - 1] == b'\n' {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// The end of a part's content that ends at the delimiter line starting at `next`: the line
/// break before the delimiter belongs to the delimiter.
fn trim_line_break(body: &[u8], start: usize, next: usize) -> usize {
    let mut end = next;
    if end > start && body[end - 1] == b'\n' {
        end -= 1;
    }
    if end > start && body[end - 1] == b'\r' {
        end -= 1;
    }
    end
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One part: its header section (up to an empty line) and its content.
fn part(bytes: &[u8]) -> Part<'_> {
    let mut p = Part::default();
    let mut rest = bytes;
    loop {
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        rest = after;
        if line.is_empty() {
            break;
        }
        let (name, value) = split_once(line, b':');
        let value = value.trim_ascii();
        let name = name.trim_ascii();
        if name.eq_ignore_ascii_case(b"content-disposition") {
            p.dispositions.push(value);
            let (_, params) = split_once(value, b';');
            p.names.extend(param_slice(params, b"name"));
            p.filenames.extend(param_slice(params, b"filename"));
        } else if name.eq_ignore_ascii_case(b"content-type") {
            p.content_types.push(value);
        } else if name.eq_ignore_ascii_case(b"content-transfer-encoding") {
            p.transfer_encodings.push(value);
        }
        if rest.is_empty() {
            break;
        }
    }
    p.value = rest;
    p
}

/// The parameter `name` of `params` (`; a=b; c="d"`), unquoted; escapes in a quoted value
/// are undone.
fn param(params: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let raw = param_raw(params, name)?;
    match raw.strip_prefix(b"\"") {
        Some(quoted) => {
            let mut out = Vec::with_capacity(quoted.len());
            let mut bytes = quoted.iter();
            while let Some(&b) = bytes.next() {
                match b {
                    b'"' => break,
                    b'\\' => out.extend(bytes.next()),
                    _ => out.push(b),
                }
            }
            Some(out)
        }
        None => Some(raw.to_vec()),
    }
}

/// The parameter `name` as a slice of `params`: the quotes removed, escapes kept (the rules
/// see the bytes as sent).
fn param_slice<'a>(params: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let raw = param_raw(params, name)?;
    match raw.strip_prefix(b"\"") {
        Some(quoted) => {
            let mut i = 0;
            while i < quoted.len() && quoted[i] != b'"' {
                i += if quoted[i] == b'\\' { 2 } else { 1 };
            }
            Some(&quoted[..i.min(quoted.len())])
        }
        None => Some(raw),
    }
}

/// The raw value of the parameter `name` (case-insensitive): from after `=` to the `;` that
/// ends it, a quoted string read whole.
fn param_raw<'a>(params: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut rest = params;
    while !rest.is_empty() {
        let start = rest
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b';'))?;
        rest = &rest[start..];
        let eq = rest.iter().position(|&b| b == b'=' || b == b';');
        let key_end = eq.unwrap_or(rest.len());
        let key = rest[..key_end].trim_ascii();
        if eq.is_none_or(|e| rest[e] == b';') {
            rest = &rest[key_end..];
            continue;
        }
        let value = rest[key_end + 1..].trim_ascii_start();
        let len = value_len(value);
        if key.eq_ignore_ascii_case(name) {
            return Some(value[..len].trim_ascii_end());
        }
        rest = &value[len..];
    }
    None
}

/// How long a parameter value is: a quoted string to its closing quote, or up to `;`.
fn value_len(value: &[u8]) -> usize {
    if value.first() == Some(&b'"') {
        let mut i = 1;
        while i < value.len() {
            match value[i] {
                b'\\' => i += 2,
                b'"' => return i + 1,
                _ => i += 1,
            }
        }
        value.len()
    } else {
        value.iter().position(|&b| b == b';').unwrap_or(value.len())
    }
}

/// The type a body's first bytes show (their "magic number"), as Cloudflare's
/// `http.request.body.mime` has it; empty when none is recognised.
pub(crate) fn sniff_mime(body: &[u8]) -> &'static str {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"PK\x05\x06", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
        (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
        (b"Rar!\x1a\x07", "application/vnd.rar"),
        (b"BZh", "application/x-bzip2"),
        (b"\xfd7zXZ\x00", "application/x-xz"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"\x00\x00\x01\x00", "image/x-icon"),
        (b"II*\x00", "image/tiff"),
        (b"MM\x00*", "image/tiff"),
        (b"OggS", "audio/ogg"),
        (b"ID3", "audio/mpeg"),
        (b"fLaC", "audio/flac"),
        (b"\x7fELF", "application/x-elf"),
        (b"\xca\xfe\xba\xbe", "application/java-vm"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            "application/x-ole-storage",
        ),
        (b"%!PS", "application/postscript"),
        (b"{\\rtf", "application/rtf"),
        (b"\x00asm", "application/wasm"),
        (b"SQLite format 3\x00", "application/vnd.sqlite3"),
        (b"#!", "text/x-shellscript"),
    ];
    if let Some((_, mime)) = MAGIC.iter().find(|(m, _)| body.starts_with(m)) {
        return mime;
    }
    if body.len() >= 12 && &body[0..4] == b"RIFF" {
        match &body[8..12] {
            b"WEBP" => return "image/webp",
            b"WAVE" => return "audio/wav",
            b"AVI " => return "video/x-msvideo",
            _ => {}
        }
    }
    if body.len() >= 12 && &body[4..8] == b"ftyp" {
        return "video/mp4";
    }
    if is_pe(body) {
        return "application/x-msdownload";
    }
    markup(body).unwrap_or("")
}

/// A Windows executable: `MZ`, and at the offset at 0x3c, `PE\0\0`.
fn is_pe(body: &[u8]) -> bool {
    if !body.starts_with(b"MZ") || body.len() < 0x40 {
        return false;
    }
    let at = u32::from_le_bytes([body[0x3c], body[0x3d], body[0x3e], body[0x3f]]) as usize;
    body.get(at..at.saturating_add(4)) == Some(b"PE\0\0")
}

/// XML or HTML, after a byte-order mark and white space.
fn markup(body: &[u8]) -> Option<&'static str> {
    let text = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let text = text.trim_ascii_start();
    let starts = |p: &[u8]| text.len() >= p.len() && text[..p.len()].eq_ignore_ascii_case(p);
    if starts(b"<?xml") {
        Some("application/xml")
    } else if starts(b"<!doctype html") || starts(b"<html") {
        Some("text/html")
    } else if starts(b"<svg") {
        Some("image/svg+xml")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &[u8] = b"--XyZ\r\n\
Content-Disposition: form-data; name=\"user\"\r\n\
\r\n\
alice\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"pic\"; filename=\"a \\\"b\\\".png\"\r\n\
Content-Type: image/png\r\n\
Content-Transfer-Encoding: binary\r\n\
\r\n\
\x89PNG\r\n--not-it\r\n\
--XyZ--\r\n";

    #[test]
    fn multipart_parts_are_read_with_their_fields() {
        let m = Multipart::parse(FORM, b"; boundary=XyZ");
        assert_eq!(m.parts.len(), 2);
        assert_eq!(m.parts[0].names, [b"user"]);
        assert_eq!(m.parts[0].value, b"alice");
        assert_eq!(m.parts[1].names, [b"pic"]);
        assert_eq!(m.parts[1].filenames, [&b"a \\\"b\\\".png"[..]]);
        assert_eq!(m.parts[1].content_types, [b"image/png"]);
        assert_eq!(m.parts[1].transfer_encodings, [b"binary"]);
        assert_eq!(m.parts[1].value, b"\x89PNG\r\n--not-it");
        // Quoted boundaries, LF line ends, and a body cut short.
        let lf = b"--a b\nContent-Disposition: form-data; name=x\n\n1\n--a b\nContent-Disposition: form-data; name=y\n\n22";
        let m = Multipart::parse(lf, b";boundary=\"a b\"");
        let got: Vec<_> = m.parts.iter().map(|p| (p.names[0], p.value)).collect();
        assert_eq!(got, [(&b"x"[..], &b"1"[..]), (b"y", b"22")]);
        assert!(Multipart::parse(FORM, b"").parts.is_empty());
        assert!(Multipart::parse(FORM, b"; boundary=other").parts.is_empty());
    }

    #[test]
    fn parameters_are_found_by_name_past_quoted_semicolons() {
        let p = b"; a=\"x;name=no\"; NAME=yes; filename=\"q\\\\\"";
        assert_eq!(param_raw(p, b"name"), Some(&b"yes"[..]));
        assert_eq!(param_slice(p, b"filename"), Some(&b"q\\\\"[..]));
        assert_eq!(param(p, b"filename"), Some(b"q\\".to_vec()));
        assert_eq!(param(p, b"a"), Some(b"x;name=no".to_vec()));
        assert_eq!(param(p, b"none"), None);
    }

    #[test]
    fn mime_types_are_sniffed_from_magic_numbers() {
        assert_eq!(sniff_mime(b"%PDF-1.7"), "application/pdf");
        assert_eq!(sniff_mime(b"PK\x03\x04rest"), "application/zip");
        assert_eq!(sniff_mime(b"  <!DOCTYPE HTML>"), "text/html");
        assert_eq!(sniff_mime(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        let mut pe = b"MZ".to_vec();
        pe.resize(0x40, 0);
        pe[0x3c] = 0x40;
        pe.extend_from_slice(b"PE\0\0");
        assert_eq!(sniff_mime(&pe), "application/x-msdownload");
        assert_eq!(sniff_mime(b"MZ not a program"), "");
        assert_eq!(sniff_mime(b"hello"), "");
        assert_eq!(sniff_mime(b""), "");
    }
}
