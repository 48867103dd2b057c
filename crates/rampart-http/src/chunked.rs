//! The chunked transfer coding (RFC 9112 §7.1), decoded as a small explicit state machine that
//! accepts its input split at any byte.

use crate::chars::{is_field_value_byte, is_tchar};
use crate::error::{ChunkedError, ChunkedErrorKind as E};

/// Longest chunk-size line (size and extensions) accepted: 4 KiB. Longer: 400.
pub const MAX_CHUNK_LINE_BYTES: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading hex digits of the chunk size; `digits` seen so far.
    Size { digits: u8 },
    /// Whitespace after the size or an extension element, before `;` or CR.
    SizeBws,
    /// After `;`, optional whitespace before the extension name.
    ExtNameStart,
    /// In the extension name.
    ExtName,
    /// After the name: whitespace, `=`, `;` or CR.
    ExtAfterName,
    /// After `=`: whitespace before the value.
    ExtValueStart,
    /// In a token value.
    ExtValueToken,
    /// In a quoted-string value.
    ExtValueQuoted,
    /// After a backslash in a quoted-string.
    ExtValueEscape,
    /// CR seen at the end of the size line: expecting LF.
    SizeLf,
    /// In chunk data.
    Data,
    /// Chunk data done: expecting CR.
    DataCr,
    /// Expecting LF after the data's CR.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// In a trailer field name.
    TrailerName,
    /// In a trailer field value.
    TrailerValue,
    /// CR at the end of a trailer line: expecting LF.
    TrailerLf,
    /// CR of the final empty line: expecting LF.
    FinalLf,
    /// The body ended.
    Done,
}

/// Decodes a chunked body.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    remaining: u64,
    line_len: usize,
    position: u64,
    /// Data bytes of the chunks whose size line is complete.
    announced: u64,
    trailers: Vec<u8>,
    max_trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// A decoder that accepts a trailer section of at most `max_trailer_bytes`.
    pub fn new(max_trailer_bytes: usize) -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            size: 0,
            remaining: 0,
            line_len: 0,
            position: 0,
            announced: 0,
            trailers: Vec::new(),
            max_trailer_bytes,
        }
    }

    /// Whether the last-chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// How many data bytes the body has declared so far: the sizes of the chunks begun,
    /// including the one whose size is being read (a size only grows as its digits arrive).
    /// A receiver with a body limit can refuse a body as soon as this passes it, without
    /// waiting for data that would only be thrown away.
    pub fn declared(&self) -> u64 {
        let reading_size = matches!(
            self.state,
            State::Size { .. }
                | State::SizeBws
                | State::ExtNameStart
                | State::ExtName
                | State::ExtAfterName
                | State::ExtValueStart
                | State::ExtValueToken
                | State::ExtValueQuoted
                | State::ExtValueEscape
                | State::SizeLf
        );
        self.announced
            .saturating_add(if reading_size { self.size } else { 0 })
    }

    /// The raw trailer section seen (field lines with their CRLFs), possibly empty.
    pub fn trailers(&self) -> &[u8] {
        &self.trailers
    }

    fn err(&self, kind: E, i: usize) -> ChunkedError {
        ChunkedError::new(kind, self.position + i as u64)
    }

    /// Decodes as much of `input` as possible, appending chunk data to `out`, and returns
    /// how many bytes of `input` it consumed. Once the body is done, the rest of `input` is
    /// left alone: it belongs to the next message.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkedError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Done => break,
                State::Data => {
                    let n = (self.remaining as usize).min(input.len() - i);
                    out.extend_from_slice(&input[i..i + n]);
                    self.remaining -= n as u64;
                    i += n;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::Size { digits } => {
                    self.count_line(i)?;
                    if let Some(d) = (b as char).to_digit(16) {
                        self.size = self
                            .size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(u64::from(d)))
                            .ok_or_else(|| self.err(E::ChunkSizeOverflow, i))?;
                        self.state = State::Size {
                            digits: digits.saturating_add(1),
                        };
                    } else if digits == 0 {
                        return Err(self.err(E::InvalidChunkSize, i));
                    } else {
                        self.after_size_element(b, i, E::InvalidChunkSize)?;
                    }
                }
                State::SizeBws => {
                    self.count_line(i)?;
                    self.after_size_element(b, i, E::InvalidChunkExtension)?;
                }
                State::ExtNameStart => {
                    self.count_line(i)?;
                    match b {
                        b' ' | b'\t' => {}
                        _ if is_tchar(b) => self.state = State::ExtName,
                        _ => return Err(self.err(E::InvalidChunkExtension, i)),
                    }
                }
                State::ExtName => {
                    self.count_line(i)?;
                    match b {
                        _ if is_tchar(b) => {}
                        b' ' | b'\t' => self.state = State::ExtAfterName,
                        b'=' => self.state = State::ExtValueStart,
                        _ => self.after_size_element(b, i, E::InvalidChunkExtension)?,
                    }
                }
                State::ExtAfterName => {
                    self.count_line(i)?;
                    match b {
                        b' ' | b'\t' => {}
                        b'=' => self.state = State::ExtValueStart,
                        _ => self.after_size_element(b, i, E::InvalidChunkExtension)?,
                    }
                }
                State::ExtValueStart => {
                    self.count_line(i)?;
                    match b {
                        b' ' | b'\t' => {}
                        b'"' => self.state = State::ExtValueQuoted,
                        _ if is_tchar(b) => self.state = State::ExtValueToken,
                        _ => return Err(self.err(E::InvalidChunkExtension, i)),
                    }
                }
                State::ExtValueToken => {
                    self.count_line(i)?;
                    if !is_tchar(b) {
                        self.after_size_element(b, i, E::InvalidChunkExtension)?;
                    }
                }
                State::ExtValueQuoted => {
                    self.count_line(i)?;
                    match b {
                        b'"' => self.state = State::SizeBws,
                        b'\\' => self.state = State::ExtValueEscape,
                        b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => {}
                        _ => return Err(self.err(E::InvalidChunkExtension, i)),
                    }
                }
                State::ExtValueEscape => {
                    self.count_line(i)?;
                    match b {
                        b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => {
                            self.state = State::ExtValueQuoted
                        }
                        _ => return Err(self.err(E::InvalidChunkExtension, i)),
                    }
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(self.err(E::BareLineEnding, i));
                    }
                    self.line_len = 0;
                    if self.size == 0 {
                        self.state = State::TrailerStart;
                    } else {
                        self.remaining = self.size;
                        self.announced = self.announced.saturating_add(self.size);
                        self.state = State::Data;
                    }
                }
                State::DataCr => match b {
                    b'\r' => self.state = State::DataLf,
                    _ => return Err(self.err(E::MissingCrlfAfterData, i)),
                },
                State::DataLf => match b {
                    b'\n' => {
                        self.size = 0;
                        self.state = State::Size { digits: 0 };
                    }
                    _ => return Err(self.err(E::MissingCrlfAfterData, i)),
                },
                State::TrailerStart => match b {
                    b'\r' => self.state = State::FinalLf,
                    _ if is_tchar(b) => {
                        self.push_trailer(b, i)?;
                        self.state = State::TrailerName;
                    }
                    b'\n' => return Err(self.err(E::BareLineEnding, i)),
                    _ => return Err(self.err(E::InvalidTrailer, i)),
                },
                State::TrailerName => {
                    self.push_trailer(b, i)?;
                    match b {
                        b':' => self.state = State::TrailerValue,
                        _ if is_tchar(b) => {}
                        _ => return Err(self.err(E::InvalidTrailer, i)),
                    }
                }
                State::TrailerValue => match b {
                    b'\r' => {
                        self.push_trailer(b, i)?;
                        self.state = State::TrailerLf;
                    }
                    b'\n' => return Err(self.err(E::BareLineEnding, i)),
                    _ if is_field_value_byte(b) => self.push_trailer(b, i)?,
                    _ => return Err(self.err(E::InvalidTrailer, i)),
                },
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(self.err(E::BareLineEnding, i));
                    }
                    self.push_trailer(b, i)?;
                    self.state = State::TrailerStart;
                }
                State::FinalLf => {
                    if b != b'\n' {
                        return Err(self.err(E::BareLineEnding, i));
                    }
                    self.state = State::Done;
                    i += 1;
                    break;
                }
            }
            i += 1;
        }
        self.position += i as u64;
        Ok(i)
    }

    /// After the size or an extension element: whitespace, `;` (another extension) or CR.
    fn after_size_element(&mut self, b: u8, i: usize, kind: E) -> Result<(), ChunkedError> {
        match b {
            b' ' | b'\t' => self.state = State::SizeBws,
            b';' => self.state = State::ExtNameStart,
            b'\r' => self.state = State::SizeLf,
            b'\n' => return Err(self.err(E::BareLineEnding, i)),
            _ => return Err(self.err(kind, i)),
        }
        Ok(())
    }

    fn count_line(&mut self, i: usize) -> Result<(), ChunkedError> {
        self.line_len += 1;
        if self.line_len > MAX_CHUNK_LINE_BYTES {
            return Err(self.err(E::ChunkLineTooLong, i));
        }
        Ok(())
    }

    fn push_trailer(&mut self, b: u8, i: usize) -> Result<(), ChunkedError> {
        if self.trailers.len() >= self.max_trailer_bytes {
            return Err(self.err(E::TrailerTooLarge, i));
        }
        self.trailers.push(b);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize), ChunkedError> {
        let mut d = ChunkedDecoder::new(1024);
        let mut out = Vec::new();
        let used = d.decode(input, &mut out)?;
        assert!(
            d.is_done(),
            "not done after {:?}",
            String::from_utf8_lossy(input)
        );
        Ok((out, used))
    }

    #[test]
    fn chunks_extensions_and_trailers_decode() {
        let body = b"5;a=b;c=\"q\\\"x\" ;d\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let (out, used) = decode_all(body).unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(&body[used..], b"NEXT");
    }

    #[test]
    fn malformed_chunked_is_rejected() {
        let cases: &[(&[u8], E)] = &[
            (b"zz\r\n", E::InvalidChunkSize),
            (b"\r\n", E::InvalidChunkSize),
            (b"fffffffffffffffff\r\n", E::ChunkSizeOverflow),
            (b"5;=x\r\n", E::InvalidChunkExtension),
            (b"5;a=\r\n", E::InvalidChunkExtension),
            (b"5 x\r\n", E::InvalidChunkExtension),
            (b"5\nhello", E::BareLineEnding),
            (b"5\r\nhelloXX", E::MissingCrlfAfterData),
            (b"5\r\nhello\rX", E::MissingCrlfAfterData),
            (b"0\r\nBad Name: x\r\n\r\n", E::InvalidTrailer),
            (b"0\r\nX: a\nb\r\n\r\n", E::BareLineEnding),
        ];
        for (input, kind) in cases {
            let mut d = ChunkedDecoder::new(1024);
            let e = d.decode(input, &mut Vec::new()).unwrap_err();
            assert_eq!(e.kind(), *kind, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn trailer_limit_at_and_over() {
        let mut body = b"0\r\nX: ".to_vec();
        body.extend(std::iter::repeat_n(b'a', 10));
        body.extend_from_slice(b"\r\n\r\n");
        let trailer_len = body.len() - 3 - 2;
        let mut d = ChunkedDecoder::new(trailer_len);
        d.decode(&body, &mut Vec::new()).unwrap();
        assert!(d.is_done());
        let mut d = ChunkedDecoder::new(trailer_len - 1);
        assert_eq!(
            d.decode(&body, &mut Vec::new()).unwrap_err().kind(),
            E::TrailerTooLarge
        );
    }

    #[test]
    fn chunk_line_limit() {
        let mut line = b"1;".to_vec();
        line.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE_BYTES));
        let mut d = ChunkedDecoder::new(1024);
        assert_eq!(
            d.decode(&line, &mut Vec::new()).unwrap_err().kind(),
            E::ChunkLineTooLong
        );
    }

    #[test]
    fn the_declared_size_grows_with_each_digit_and_chunk() {
        let mut d = ChunkedDecoder::new(64);
        let mut out = Vec::new();
        assert_eq!(d.declared(), 0);
        d.decode(b"5\r\nhello\r\n1", &mut out).unwrap();
        assert_eq!(d.declared(), 6, "5 bytes, and the next chunk's first digit");
        d.decode(b"0", &mut out).unwrap();
        assert_eq!(d.declared(), 5 + 0x10);
        d.decode(b"00000;x=y", &mut out).unwrap();
        assert_eq!(
            d.declared(),
            5 + 0x1000000,
            "extensions do not hide the size"
        );
        let mut d = ChunkedDecoder::new(64);
        d.decode(b"ffffffffffffffff", &mut out).unwrap();
        assert_eq!(d.declared(), u64::MAX, "known before the line ends");
    }
}
