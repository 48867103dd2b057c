//! Compression at the edge: which content codings a client accepts (RFC 9110 §12.5.3), which
//! stored responses are worth compressing, and the compression itself (zstd, brotli, gzip).
//!
//! A stored object is compressed once per coding, when a client first asks for that coding,
//! and the result is kept with the object ([`Encodings`]): hits never compress.

use std::io::Write as _;
use std::sync::OnceLock;

use bytes::Bytes;

/// A content coding the edge produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// Zstandard (RFC 8878), level 3.
    Zstd,
    /// Brotli (RFC 7932), quality 5.
    Br,
    /// gzip (RFC 1952), level 6.
    Gzip,
}

impl Coding {
    /// Its name in `Accept-Encoding` and `Content-Encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Zstd => "zstd",
            Coding::Br => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// Preferred first when a client accepts several equally: the smallest output first.
    const PREFERENCE: [Coding; 3] = [Coding::Zstd, Coding::Br, Coding::Gzip];

    fn index(self) -> usize {
        match self {
            Coding::Zstd => 0,
            Coding::Br => 1,
            Coding::Gzip => 2,
        }
    }
}

/// Bodies smaller than this are not compressed: the saving does not pay for the headers.
pub const MIN_SIZE: usize = 256;

/// The coding to answer a request with, from its `Accept-Encoding`: the one with the highest
/// q-value (ties go to zstd, then br, then gzip); none when it accepts none of them.
pub fn negotiate(accept_encoding: Option<&[u8]>) -> Option<Coding> {
    let value = accept_encoding?;
    let mut q = [None::<u16>; 3];
    let mut star = None;
    for item in value.split(|&b| b == b',') {
        let mut parts = item.split(|&b| b == b';');
        let name = parts.next().unwrap_or_default().trim_ascii();
        let weight = parts
            .filter_map(|p| {
                let p = p.trim_ascii();
                let v = p.strip_prefix(b"q=").or_else(|| p.strip_prefix(b"Q="))?;
                parse_q(v)
            })
            .next()
            .unwrap_or(1000);
        let coding = if name.eq_ignore_ascii_case(b"zstd") {
            Coding::Zstd
        } else if name.eq_ignore_ascii_case(b"br") {
            Coding::Br
        } else if name.eq_ignore_ascii_case(b"gzip") || name.eq_ignore_ascii_case(b"x-gzip") {
            Coding::Gzip
        } else {
            if name == b"*" {
                star = Some(weight);
            }
            continue;
        };
        q[coding.index()] = Some(weight);
    }
    Coding::PREFERENCE
        .into_iter()
        .map(|c| (c, q[c.index()].or(star).unwrap_or(0)))
        .filter(|(_, w)| *w > 0)
        .fold(None, |best: Option<(Coding, u16)>, (c, w)| match best {
            Some((_, bw)) if bw >= w => best,
            _ => Some((c, w)),
        })
        .map(|(c, _)| c)
}

/// A q-value in thousandths (RFC 9110 §12.4.2); `None` when malformed.
fn parse_q(v: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(v).ok()?;
    let f: f32 = s.parse().ok()?;
    (0.0..=1.0)
        .contains(&f)
        .then(|| (f * 1000.0).round() as u16)
}

/// Whether a response of this `Content-Type` is worth compressing: text, and the structured
/// and script types that are text; not images, media, archives or fonts that are compressed
/// already (WOFF).
pub fn compressible(content_type: Option<&[u8]>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let media = ct
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let media = String::from_utf8_lossy(media).to_ascii_lowercase();
    media.starts_with("text/")
        || media.ends_with("+json")
        || media.ends_with("+xml")
        || matches!(
            media.as_str(),
            "application/javascript"
                | "application/x-javascript"
                | "application/ecmascript"
                | "application/json"
                | "application/xml"
                | "application/wasm"
                | "application/x-font-ttf"
                | "application/x-font-opentype"
                | "application/vnd.ms-fontobject"
                | "font/ttf"
                | "font/otf"
                | "image/svg+xml"
                | "image/x-icon"
                | "image/vnd.microsoft.icon"
                | "image/bmp"
        )
}

/// `body` compressed with `coding`.
pub fn compress(body: &[u8], coding: Coding) -> Bytes {
    let out = match coding {
        Coding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 3),
                flate2::Compression::new(6),
            );
            // Writing to a Vec cannot fail.
            let _ = e.write_all(body);
            e.finish().unwrap_or_default()
        }
        Coding::Br => {
            let mut out = Vec::with_capacity(body.len() / 3);
            let params = brotli::enc::BrotliEncoderParams {
                quality: 5,
                lgwin: 22,
                ..Default::default()
            };
            let _ = brotli::BrotliCompress(&mut &body[..], &mut out, &params);
            out
        }
        Coding::Zstd => zstd::bulk::compress(body, 3).unwrap_or_default(),
    };
    Bytes::from(out)
}

/// Compresses a body that streams (a response that is not cached): each piece is compressed
/// and flushed, so that what the origin sent so far can be decoded by the client at once.
pub struct Compressor(Stream);

enum Stream {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Compressor {
    /// A compressor for `coding`, at the levels [`compress`] uses.
    pub fn new(coding: Coding) -> Compressor {
        Compressor(match coding {
            Coding::Gzip => Stream::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(6),
            )),
            Coding::Br => Stream::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                16 * 1024,
                5,
                22,
            ))),
            Coding::Zstd => match zstd::stream::write::Encoder::new(Vec::new(), 3) {
                Ok(e) => Stream::Zstd(e),
                // Only fails without memory for its context; gzip needs far less.
                Err(_) => Stream::Gzip(flate2::write::GzEncoder::new(
                    Vec::new(),
                    flate2::Compression::new(6),
                )),
            },
        })
    }

    /// The coding it produces.
    pub fn coding(&self) -> Coding {
        match self.0 {
            Stream::Gzip(_) => Coding::Gzip,
            Stream::Br(_) => Coding::Br,
            Stream::Zstd(_) => Coding::Zstd,
        }
    }

    /// Compresses `data` and flushes: the bytes to send now (writing to memory cannot fail).
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        let out = match &mut self.0 {
            Stream::Gzip(e) => {
                let _ = e.write_all(data).and_then(|()| e.flush());
                e.get_mut()
            }
            Stream::Br(e) => {
                let _ = e.write_all(data).and_then(|()| e.flush());
                e.get_mut()
            }
            Stream::Zstd(e) => {
                let _ = e.write_all(data).and_then(|()| e.flush());
                e.get_mut()
            }
        };
        std::mem::take(out)
    }

    /// Ends the stream: the last bytes to send.
    pub fn finish(self) -> Vec<u8> {
        match self.0 {
            Stream::Gzip(e) => e.finish().unwrap_or_default(),
            Stream::Br(e) => e.into_inner(),
            Stream::Zstd(e) => e.finish().unwrap_or_default(),
        }
    }
}

/// Whether a response of this type is compressed as it streams: what is compressible, but
/// not event streams, whose events must reach the client one by one.
pub fn compressible_stream(content_type: Option<&[u8]>) -> bool {
    let event_stream = content_type
        .is_some_and(|ct| ct.len() >= 17 && ct[..17].eq_ignore_ascii_case(b"text/event-stream"));
    compressible(content_type) && !event_stream
}

/// A stored object's body in each coding, made when first asked for. One pointer in an object
/// that is never compressed (most of a large cache: images, fonts, media).
#[derive(Debug, Default)]
pub struct Encodings(OnceLock<Box<[OnceLock<Bytes>; 3]>>);

impl Clone for Encodings {
    /// A copy starts empty: it is another object's (a freshened one, say).
    fn clone(&self) -> Self {
        Encodings::default()
    }
}

impl Encodings {
    /// The body in `coding`, if it was made.
    pub fn get(&self, coding: Coding) -> Option<&Bytes> {
        self.0.get()?[coding.index()].get()
    }

    /// Keeps `body` as the body in `coding`; `false` when another request kept one first.
    pub fn set(&self, coding: Coding, body: Bytes) -> bool {
        self.0.get_or_init(Box::default)[coding.index()]
            .set(body)
            .is_ok()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.0.get().map_or(0, |all| {
            all.iter().filter_map(|c| c.get()).map(Bytes::len).sum()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn the_best_accepted_coding_is_chosen() {
        let n = |v: &str| negotiate(Some(v.as_bytes()));
        assert_eq!(n("gzip, deflate, br, zstd"), Some(Coding::Zstd));
        assert_eq!(n("gzip, deflate, br"), Some(Coding::Br));
        assert_eq!(n("gzip"), Some(Coding::Gzip));
        assert_eq!(n("GZIP;q=0.5, br;q=0.4"), Some(Coding::Gzip));
        assert_eq!(n("br;q=0, gzip"), Some(Coding::Gzip));
        assert_eq!(n("identity"), None);
        assert_eq!(n("deflate"), None);
        assert_eq!(n("*"), Some(Coding::Zstd));
        assert_eq!(n("*;q=0, gzip"), Some(Coding::Gzip));
        assert_eq!(n("br;q=bogus, gzip;q=0.1"), Some(Coding::Br));
        assert_eq!(n(""), None);
        assert_eq!(negotiate(None), None);
    }

    #[test]
    fn a_streamed_body_decodes_piece_by_piece_and_whole() {
        let body = "<p>hello, streamed world</p>\n".repeat(300);
        for coding in [Coding::Gzip, Coding::Br, Coding::Zstd] {
            let mut c = Compressor::new(coding);
            assert_eq!(c.coding(), coding);
            let mut out = Vec::new();
            for piece in body.as_bytes().chunks(1000) {
                let sent = c.push(piece);
                assert!(!sent.is_empty(), "{coding:?}: flushed with each piece");
                out.extend_from_slice(&sent);
            }
            out.extend_from_slice(&c.finish());
            let back = match coding {
                Coding::Gzip => {
                    let mut s = Vec::new();
                    flate2::read::GzDecoder::new(&out[..])
                        .read_to_end(&mut s)
                        .unwrap();
                    s
                }
                Coding::Br => {
                    let mut s = Vec::new();
                    brotli::BrotliDecompress(&mut &out[..], &mut s).unwrap();
                    s
                }
                Coding::Zstd => zstd::stream::decode_all(&out[..]).unwrap(),
            };
            assert_eq!(back, body.as_bytes(), "{coding:?}");
            assert!(
                out.len() < body.len() / 3,
                "{coding:?}: {} bytes",
                out.len()
            );
        }
        assert!(!compressible_stream(Some(
            b"text/event-stream; charset=utf-8"
        )));
        assert!(compressible_stream(Some(b"text/html")));
    }

    #[test]
    fn text_is_compressible_and_compressed_media_is_not() {
        for t in [
            "text/css",
            "text/html; charset=utf-8",
            "application/json",
            "application/ld+json",
            "image/svg+xml",
            "APPLICATION/JAVASCRIPT",
        ] {
            assert!(compressible(Some(t.as_bytes())), "{t}");
        }
        for t in [
            "image/png",
            "image/jpeg",
            "font/woff2",
            "application/zip",
            "video/mp4",
            "application/octet-stream",
        ] {
            assert!(!compressible(Some(t.as_bytes())), "{t}");
        }
        assert!(!compressible(None));
    }

    #[test]
    fn each_coding_decodes_to_the_body() {
        let body = "body { color: red; margin: 0 auto; }\n".repeat(200);
        let gz = compress(body.as_bytes(), Coding::Gzip);
        let mut back = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, body);
        let br = compress(body.as_bytes(), Coding::Br);
        let mut back = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut back).unwrap();
        assert_eq!(back, body.as_bytes());
        let zs = compress(body.as_bytes(), Coding::Zstd);
        assert_eq!(
            zstd::bulk::decompress(&zs, body.len()).unwrap(),
            body.as_bytes()
        );
        assert!(
            zs.len() < body.len() / 10 && br.len() < body.len() / 10 && gz.len() < body.len() / 10
        );
    }
}
