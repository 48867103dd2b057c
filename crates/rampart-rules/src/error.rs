//! Compile errors: what is wrong, where (a byte span of the expression), and
//! a human rendering with the offending line and a caret under the span.

use std::fmt;

/// A half-open byte range `start..end` into the expression text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte of the span.
    pub start: usize,
    /// One past the last byte of the span.
    pub end: usize,
}

impl Span {
    /// Creates a span from `start` to `end` (end exclusive).
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// Why an expression was rejected. Every variant is the user's fault (the
/// expression is wrong or exceeds a limit); the engine never rejects a valid
/// expression because of its own state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The expression is longer than `ParserSettings::max_expression_length`.
    ExpressionTooLong {
        /// Length of the expression in bytes.
        length: usize,
        /// The configured limit.
        max: usize,
    },
    /// Parentheses, `not`, function calls and indexes nest deeper than
    /// `ParserSettings::max_nesting_depth`.
    NestingTooDeep {
        /// The configured limit.
        max: usize,
    },
    /// A regular expression compiles to more than `ParserSettings::max_regex_size` bytes.
    RegexTooBig {
        /// The configured limit.
        max: usize,
    },
    /// A wildcard pattern has more `*` than `ParserSettings::max_wildcard_stars`.
    TooManyWildcardStars {
        /// Number of stars found.
        stars: usize,
        /// The configured limit.
        max: usize,
    },
    /// A literal set `{...}` holds more items than `ParserSettings::max_set_items`.
    TooManySetItems {
        /// The configured limit.
        max: usize,
    },
    /// A string literal has no closing quote.
    UnterminatedString,
    /// A backslash sequence that is not `\"`, `\\` or `\xHH`.
    InvalidEscape,
    /// A character that cannot start any token.
    UnexpectedCharacter(char),
    /// A token that does not fit the grammar here.
    UnexpectedToken {
        /// What the parser wanted.
        expected: &'static str,
        /// What it found.
        found: String,
    },
    /// The expression ended while more was expected.
    UnexpectedEnd {
        /// What the parser wanted.
        expected: &'static str,
    },
    /// A field name that the scheme does not declare.
    UnknownField {
        /// The name as written.
        name: String,
        /// The closest declared name, if one is close enough.
        suggestion: Option<String>,
    },
    /// A function name that does not exist.
    UnknownFunction {
        /// The name as written.
        name: String,
        /// The closest known function, if one is close enough.
        suggestion: Option<String>,
    },
    /// A named list `$name` that the host program did not supply.
    UnknownList {
        /// The name as written, without `$`.
        name: String,
    },
    /// A value of one type where another was required.
    TypeMismatch {
        /// The type required here.
        expected: String,
        /// The type found.
        found: String,
    },
    /// The operator is not defined for the type on its left.
    UnsupportedOperator {
        /// The operator as written.
        op: String,
        /// The type on its left.
        ty: String,
    },
    /// A function called with the wrong number of arguments.
    WrongArgumentCount {
        /// The function.
        function: &'static str,
        /// Accepted count, e.g. "2" or "1 or 2".
        expected: &'static str,
        /// Count given.
        found: usize,
    },
    /// An argument value that the function does not accept (e.g. `split` limit out of range).
    InvalidArgument {
        /// Explanation.
        message: String,
    },
    /// A regular expression that does not compile.
    InvalidRegex {
        /// The regex engine's explanation.
        message: String,
    },
    /// A wildcard pattern that is not valid (`**`, or a stray backslash).
    InvalidWildcard {
        /// Explanation.
        message: String,
    },
    /// An integer literal that is not a valid 64-bit integer.
    InvalidInteger,
    /// An IP address, CIDR or IP range literal that does not parse.
    InvalidIp,
    /// A CIDR literal whose host bits are not zero (e.g. `10.0.0.1/8`).
    CidrHostBitsSet {
        /// The network the user probably meant.
        network: String,
    },
    /// A range whose start is greater than its end.
    InvalidRange,
    /// `[*]` used where no function or comparison can apply it per element.
    MisplacedStar,
    /// The whole expression is not a Bool.
    NotABoolean {
        /// The type the expression has instead.
        found: String,
    },
    /// A value expression (a redirect's target, a header's value) is not a string.
    NotAString {
        /// The type the expression has instead.
        found: String,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        match self {
            ExpressionTooLong { length, max } => write!(
                f,
                "expression is {length} bytes long; the limit is {max} bytes"
            ),
            NestingTooDeep { max } => write!(
                f,
                "expression nests too deeply; at most {max} levels of parentheses, `not`, function calls and indexes are allowed"
            ),
            RegexTooBig { max } => write!(
                f,
                "regular expression is too big once compiled; the limit is {max} bytes"
            ),
            TooManyWildcardStars { stars, max } => write!(
                f,
                "wildcard pattern has {stars} `*`; at most {max} are allowed"
            ),
            TooManySetItems { max } => {
                write!(f, "set has too many items; at most {max} are allowed")
            }
            UnterminatedString => write!(f, "unterminated string: missing closing `\"`"),
            InvalidEscape => write!(
                f,
                "invalid escape sequence; in a quoted string only `\\\"`, `\\\\` and `\\xHH` are allowed (use a raw string r\"...\" to avoid escaping)"
            ),
            UnexpectedCharacter(c) => write!(f, "unexpected character `{}`", c.escape_debug()),
            UnexpectedToken { expected, found } => {
                write!(f, "expected {expected}, found `{found}`")
            }
            UnexpectedEnd { expected } => {
                write!(f, "expected {expected}, but the expression ended")
            }
            UnknownField { name, suggestion } => {
                write!(f, "unknown field `{name}`")?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean `{s}`?")?;
                }
                Ok(())
            }
            UnknownFunction { name, suggestion } => {
                write!(f, "unknown function `{name}`")?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean `{s}`?")?;
                }
                Ok(())
            }
            UnknownList { name } => write!(f, "unknown list `${name}`"),
            TypeMismatch { expected, found } => {
                write!(f, "type mismatch: expected {expected}, found {found}")
            }
            UnsupportedOperator { op, ty } => {
                write!(
                    f,
                    "operator `{op}` cannot be used with a value of type {ty}"
                )
            }
            WrongArgumentCount {
                function,
                expected,
                found,
            } => write!(
                f,
                "function `{function}` takes {expected} argument(s), but {found} were given"
            ),
            InvalidArgument { message } => write!(f, "invalid argument: {message}"),
            InvalidRegex { message } => write!(f, "invalid regular expression: {message}"),
            InvalidWildcard { message } => write!(f, "invalid wildcard pattern: {message}"),
            InvalidInteger => write!(f, "invalid integer (must fit in a signed 64-bit integer)"),
            InvalidIp => write!(f, "invalid IP address, CIDR range or IP range"),
            CidrHostBitsSet { network } => {
                write!(f, "CIDR range has host bits set; did you mean `{network}`?")
            }
            InvalidRange => write!(f, "range start is greater than its end"),
            MisplacedStar => write!(
                f,
                "`[*]` can only be used in the first argument of a function or on the left of a comparison inside a function such as any() or all()"
            ),
            NotABoolean { found } => write!(
                f,
                "expression must be a Bool (a comparison or a Bool field), but it is {found}"
            ),
            NotAString { found } => write!(
                f,
                "expression must be a string (a Bytes field, a literal or a function such as concat()), but it is {found}"
            ),
        }
    }
}

/// An expression that failed to parse, type-check or compile.
///
/// `Display` renders it for a human, with the offending line and a caret:
///
/// ```text
/// error: unknown field `http.request.uri.paht`; did you mean `http.request.uri.path`?
///  --> line 1, column 1
///   |
/// 1 | http.request.uri.paht eq "/"
///   | ^^^^^^^^^^^^^^^^^^^^^
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    kind: ErrorKind,
    span: Span,
    expression: String,
}

impl CompileError {
    pub(crate) fn new(kind: ErrorKind, span: Span, expression: &str) -> Self {
        // Cap the stored copy so a huge rejected expression does not stay in memory.
        let mut end = expression.len().min(64 * 1024);
        while !expression.is_char_boundary(end) {
            end -= 1;
        }
        CompileError {
            kind,
            span,
            expression: expression[..end].to_owned(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Where in the expression, as byte offsets.
    pub fn span(&self) -> Span {
        self.span
    }

    /// 1-based line and column (in characters) of the start of the span.
    pub fn line_column(&self) -> (usize, usize) {
        let start = self.span.start.min(self.expression.len());
        let mut line = 1;
        let mut line_start = 0;
        for (i, b) in self.expression.as_bytes()[..start].iter().enumerate() {
            if *b == b'\n' {
                line += 1;
                line_start = i + 1;
            }
        }
        let col = self.expression[line_start..floor_char(&self.expression, start)]
            .chars()
            .count()
            + 1;
        (line, col)
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, col) = self.line_column();
        writeln!(f, "error: {}", self.kind)?;
        writeln!(f, " --> line {line}, column {col}")?;
        let text = &self.expression;
        let start = floor_char(text, self.span.start);
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line_text = &text[line_start..line_end];
        let end = floor_char(text, self.span.end.max(start).min(line_end));
        let pad = text[line_start..start].chars().count();
        let width = text[start..end].chars().count().max(1);
        let gutter = line.to_string().len();
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{line} | {line_text}")?;
        write!(
            f,
            "{:gutter$} | {}{}",
            "",
            " ".repeat(pad),
            "^".repeat(width)
        )
    }
}

impl std::error::Error for CompileError {}

/// Edit distance used to suggest the nearest field or function name.
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `name`, if within a distance that suggests a typo.
pub(crate) fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let limit = (name.len() / 3).max(2);
    candidates
        .map(|c| (levenshtein(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}
