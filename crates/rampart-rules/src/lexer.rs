//! Splits an expression into tokens, each with its byte span.

use crate::error::{CompileError, ErrorKind, Span};

/// One token. Words and strings refer to the source text by span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A run of `[A-Za-z0-9_.:/-]`: a field or function name, a keyword, or a
    /// literal such as `42`, `1..5`, `10.0.0.0/8` or `2001:db8::1`.
    Word,
    /// A quoted string `"..."`; `content` is the text between the quotes, undecoded.
    Str {
        content: Span,
    },
    /// A raw string `r"..."` or `r#"..."#`; `content` is taken as is.
    RawStr {
        content: Span,
    },
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Dollar,
    Star,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    Tilde,
    Bang,
    AndAnd,
    OrOr,
    XorXor,
    Amp,
}

/// A token and where it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/')
}

/// Tokenizes `src`. The caller has already bounded its length.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, CompileError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |kind, span| Err(CompileError::new(kind, span, src));
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        // Raw string: r"...", r#"..."#, up to 255 `#`.
        if b == b'r' && matches!(bytes.get(i + 1), Some(b'"' | b'#')) {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] == b'#' {
                j += 1;
            }
            let hashes = j - i - 1;
            if bytes.get(j) == Some(&b'"') && hashes <= 255 {
                let content_start = j + 1;
                let mut k = content_start;
                let found = loop {
                    if k >= bytes.len() {
                        break None;
                    }
                    if bytes[k] == b'"'
                        && bytes.len() >= k + 1 + hashes
                        && bytes[k + 1..k + 1 + hashes].iter().all(|c| *c == b'#')
                    {
                        break Some(k);
                    }
                    k += 1;
                };
                let Some(close) = found else {
                    return err(ErrorKind::UnterminatedString, Span::new(start, bytes.len()));
                };
                i = close + 1 + hashes;
                out.push(Token {
                    tok: Tok::RawStr {
                        content: Span::new(content_start, close),
                    },
                    span: Span::new(start, i),
                });
                continue;
            }
        }
        if b == b'"' {
            let mut k = i + 1;
            loop {
                match bytes.get(k) {
                    None => {
                        return err(ErrorKind::UnterminatedString, Span::new(start, bytes.len()));
                    }
                    Some(b'\\') => k += 2,
                    Some(b'"') => break,
                    Some(_) => k += 1,
                }
            }
            i = k + 1;
            out.push(Token {
                tok: Tok::Str {
                    content: Span::new(start + 1, k),
                },
                span: Span::new(start, i),
            });
            continue;
        }
        let negative_number = b == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
        if is_word_byte(b) || negative_number {
            i += 1;
            while i < bytes.len() && is_word_byte(bytes[i]) {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Word,
                span: Span::new(start, i),
            });
            continue;
        }
        let two = bytes.get(i + 1).copied();
        let (tok, len) = match (b, two) {
            (b'=', Some(b'=')) => (Tok::EqEq, 2),
            (b'!', Some(b'=')) => (Tok::NotEq, 2),
            (b'<', Some(b'=')) => (Tok::Le, 2),
            (b'>', Some(b'=')) => (Tok::Ge, 2),
            (b'&', Some(b'&')) => (Tok::AndAnd, 2),
            (b'|', Some(b'|')) => (Tok::OrOr, 2),
            (b'^', Some(b'^')) => (Tok::XorXor, 2),
            (b'<', _) => (Tok::Lt, 1),
            (b'>', _) => (Tok::Gt, 1),
            (b'!', _) => (Tok::Bang, 1),
            (b'~', _) => (Tok::Tilde, 1),
            (b'&', _) => (Tok::Amp, 1),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b'[', _) => (Tok::LBracket, 1),
            (b']', _) => (Tok::RBracket, 1),
            (b'{', _) => (Tok::LBrace, 1),
            (b'}', _) => (Tok::RBrace, 1),
            (b',', _) => (Tok::Comma, 1),
            (b'$', _) => (Tok::Dollar, 1),
            (b'*', _) => (Tok::Star, 1),
            _ => {
                let c = src[i..].chars().next().unwrap_or('\u{fffd}');
                return err(
                    ErrorKind::UnexpectedCharacter(c),
                    Span::new(i, i + c.len_utf8()),
                );
            }
        };
        i += len;
        out.push(Token {
            tok,
            span: Span::new(start, i),
        });
    }
    Ok(out)
}

/// Decodes a quoted string's content with the basic escaping rules:
/// `\"`, `\\` and `\xHH`. `offset` is the content's position in the source.
pub(crate) fn decode_basic(
    content: &str,
    offset: usize,
    src: &str,
) -> Result<Vec<u8>, CompileError> {
    let b = content.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let bad = |len: usize| {
            CompileError::new(
                ErrorKind::InvalidEscape,
                Span::new(offset + i, offset + (i + len).min(b.len())),
                src,
            )
        };
        match b.get(i + 1) {
            Some(b'"') => out.push(b'"'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex = b.get(i + 2..i + 4).ok_or_else(|| bad(4))?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad(4))?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad(4))?);
                i += 4;
                continue;
            }
            _ => return Err(bad(2)),
        }
        i += 2;
    }
    Ok(out)
}

/// Decodes a quoted string used as a regular expression: only `\"` loses its
/// backslash; every other escape is left for the regex parser.
pub(crate) fn decode_regex(content: &str) -> String {
    let mut out = String::with_capacity(content.len());
    let mut chars = content.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('"') => out.push('"'),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}
