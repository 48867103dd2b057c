//! The functions of the language, each declared once: its name, how many arguments it takes,
//! and its type rule (which arguments must be literals, what it returns), compiling a call to
//! the [`Func`] that evaluates it. Adding a function is an entry here and its arm in
//! [`Func::call`].

use std::sync::Arc;

use regex::bytes::Regex;

use super::{Func, parse_replacement};
use crate::compile::Wildcard;
use crate::error::{CompileError, ErrorKind, Span};
use crate::exec::ConstVal;
use crate::types::Type;

/// An argument of a call, as type-checked.
pub(crate) struct Arg<'a> {
    pub(crate) ty: &'a Type,
    pub(crate) span: Span,
    /// An element of an array unpacked with `[*]`.
    pub(crate) mapped: bool,
    /// The literal, when the argument is one.
    pub(crate) literal: Option<&'a ConstVal>,
}

/// What a type rule needs of the type checker.
pub(crate) trait Typing {
    /// An error of `kind` at `span`, with the source excerpt.
    fn error(&self, kind: ErrorKind, span: Span) -> CompileError;
    /// A regular expression, compiled (and shared with equal ones) within the limits.
    fn regex(&mut self, pattern: &str, span: Span) -> Result<Regex, CompileError>;
    /// A wildcard pattern with captures, compiled within the limits.
    fn wildcard(
        &mut self,
        pattern: &[u8],
        case_insensitive: bool,
        span: Span,
    ) -> Result<Arc<Wildcard>, CompileError>;
    /// Longest value a function may build.
    fn max_value_length(&self) -> usize;
}

type R<T> = Result<T, CompileError>;

/// A type rule: checks a call's arguments and compiles it to the function and its result type.
pub(crate) type Rule = fn(&mut dyn Typing, &[Arg<'_>]) -> R<(Func, Type)>;

/// The rule of one function.
pub(crate) struct Function {
    /// Its name in expressions.
    pub(crate) name: &'static str,
    /// Fewest and most arguments, and how an error says so.
    pub(crate) arity: (usize, usize, &'static str),
    /// Checks the arguments and compiles the call.
    pub(crate) compile: Rule,
}

/// Every function of the language, in the order the docs list them.
pub(crate) const FUNCTIONS: &[Function] = &[
    Function {
        name: "any",
        arity: (1, 1, "1"),
        compile: |c, a| all_or_any(c, a, Func::Any),
    },
    Function {
        name: "all",
        arity: (1, 1, "1"),
        compile: |c, a| all_or_any(c, a, Func::All),
    },
    Function {
        name: "lower",
        arity: (1, 1, "1"),
        compile: |c, a| bytes_to_bytes(c, a, Func::Lower),
    },
    Function {
        name: "upper",
        arity: (1, 1, "1"),
        compile: |c, a| bytes_to_bytes(c, a, Func::Upper),
    },
    Function {
        name: "len",
        arity: (1, 1, "1"),
        compile: |c, a| {
            if !matches!(a[0].ty, Type::Bytes | Type::Array(_) | Type::Map(_)) {
                return Err(mismatch(c, "Bytes, an Array or a Map", &a[0]));
            }
            Ok((Func::Len, Type::Int))
        },
    },
    Function {
        name: "starts_with",
        arity: (2, 2, "2"),
        compile: |c, a| {
            two_bytes(c, a)?;
            Ok((Func::StartsWith, Type::Bool))
        },
    },
    Function {
        name: "ends_with",
        arity: (2, 2, "2"),
        compile: |c, a| {
            two_bytes(c, a)?;
            Ok((Func::EndsWith, Type::Bool))
        },
    },
    Function {
        name: "concat",
        arity: (1, usize::MAX, "at least 1"),
        compile: |c, a| {
            if !matches!(a[0].ty, Type::Bytes | Type::Array(_)) {
                return Err(mismatch(c, "Bytes or an Array", &a[0]));
            }
            for t in &a[1..] {
                expect(c, t, a[0].ty)?;
            }
            let limit = c.max_value_length();
            Ok((Func::Concat { limit }, a[0].ty.clone()))
        },
    },
    Function {
        name: "url_decode",
        arity: (1, 2, "1 or 2"),
        compile: |c, a| {
            expect(c, &a[0], &Type::Bytes)?;
            let (mut recursive, mut unicode) = (false, false);
            if let Some(opts) = a.get(1) {
                for b in literal_bytes(c, opts, "url_decode", "options")? {
                    match b {
                        b'r' => recursive = true,
                        b'u' => unicode = true,
                        _ => {
                            return Err(invalid(
                                c,
                                "url_decode options may only contain `r` (recursive) and `u` (%uXXXX decoding)",
                                opts,
                            ));
                        }
                    }
                }
            }
            Ok((Func::UrlDecode { recursive, unicode }, Type::Bytes))
        },
    },
    Function {
        name: "to_string",
        arity: (1, 1, "1"),
        compile: |c, a| {
            if !matches!(a[0].ty, Type::Int | Type::Bool | Type::Ip) {
                return Err(mismatch(c, "Int, Bool or Ip", &a[0]));
            }
            Ok((Func::ToString, Type::Bytes))
        },
    },
    Function {
        name: "substring",
        arity: (2, 3, "2 or 3"),
        compile: |c, a| {
            expect(c, &a[0], &Type::Bytes)?;
            for t in &a[1..] {
                expect(c, t, &Type::Int)?;
            }
            Ok((Func::Substring, Type::Bytes))
        },
    },
    Function {
        name: "split",
        arity: (3, 3, "3"),
        compile: |c, a| {
            expect(c, &a[0], &Type::Bytes)?;
            let separator = literal_bytes(c, &a[1], "split", "separator")?;
            if separator.is_empty() {
                return Err(invalid(
                    c,
                    "the separator of `split` must not be empty",
                    &a[1],
                ));
            }
            let limit = literal_int(c, &a[2], 1, 128, "split", "limit")?.ok_or_else(|| {
                invalid(
                    c,
                    "the limit of `split` must be a literal integer between 1 and 128",
                    &a[2],
                )
            })?;
            let split = Func::Split {
                separator: separator.into(),
                limit: limit as usize,
            };
            Ok((split, Type::array(Type::Bytes)))
        },
    },
    Function {
        name: "join",
        arity: (2, 2, "2"),
        compile: |c, a| {
            expect(c, &a[0], &Type::array(Type::Bytes))?;
            expect(c, &a[1], &Type::Bytes)?;
            let limit = c.max_value_length();
            Ok((Func::Join { limit }, Type::Bytes))
        },
    },
    Function {
        name: "remove_bytes",
        arity: (2, 2, "2"),
        compile: |c, a| {
            two_bytes(c, a)?;
            Ok((Func::RemoveBytes, Type::Bytes))
        },
    },
    Function {
        name: "regex_replace",
        arity: (3, 3, "3"),
        compile: |c, a| {
            expect(c, &a[0], &Type::Bytes)?;
            let pattern = literal_bytes(c, &a[1], "regex_replace", "regular expression")?;
            let pattern = String::from_utf8(pattern).map_err(|_| {
                c.error(
                    ErrorKind::InvalidRegex {
                        message: "a regular expression must be valid UTF-8".into(),
                    },
                    a[1].span,
                )
            })?;
            let regex = c.regex(&pattern, a[1].span)?;
            let template = literal_bytes(c, &a[2], "regex_replace", "replacement")?;
            let replacement = parse_replacement(&template, regex.captures_len() - 1)
                .map_err(|message| invalid(c, &message, &a[2]))?;
            let limit = c.max_value_length();
            let replace = Func::RegexReplace {
                regex,
                replacement,
                limit,
            };
            Ok((replace, Type::Bytes))
        },
    },
    Function {
        name: "wildcard_replace",
        arity: (3, 4, "3 or 4"),
        compile: |c, a| {
            expect(c, &a[0], &Type::Bytes)?;
            let pattern = literal_bytes(c, &a[1], "wildcard_replace", "wildcard pattern")?;
            let case_insensitive = match a.get(3) {
                None => true,
                Some(flags) => {
                    match literal_bytes(c, flags, "wildcard_replace", "flags")?.as_slice() {
                        b"s" => false,
                        b"" => true,
                        _ => {
                            return Err(invalid(
                                c,
                                "the only flag of `wildcard_replace` is `s` (case-sensitive)",
                                flags,
                            ));
                        }
                    }
                }
            };
            let wildcard = c.wildcard(&pattern, case_insensitive, a[1].span)?;
            let template = literal_bytes(c, &a[2], "wildcard_replace", "replacement")?;
            let replacement = parse_replacement(&template, wildcard.stars())
                .map_err(|message| invalid(c, &message, &a[2]))?;
            let limit = c.max_value_length();
            let replace = Func::WildcardReplace {
                wildcard,
                replacement,
                limit,
            };
            Ok((replace, Type::Bytes))
        },
    },
    Function {
        name: "cidr",
        arity: (3, 3, "3"),
        compile: |c, a| {
            expect(c, &a[0], &Type::Ip)?;
            expect(c, &a[1], &Type::Int)?;
            expect(c, &a[2], &Type::Int)?;
            literal_int(c, &a[1], 1, 32, "cidr", "IPv4 network bits")?;
            literal_int(c, &a[2], 1, 128, "cidr", "IPv6 network bits")?;
            Ok((Func::Cidr, Type::Ip))
        },
    },
    Function {
        name: "cidr6",
        arity: (2, 2, "2"),
        compile: |c, a| {
            expect(c, &a[0], &Type::Ip)?;
            expect(c, &a[1], &Type::Int)?;
            literal_int(c, &a[1], 1, 128, "cidr6", "IPv6 network bits")?;
            Ok((Func::Cidr6, Type::Ip))
        },
    },
    Function {
        name: "decode_base64",
        arity: (1, 1, "1"),
        compile: |c, a| bytes_to_bytes(c, a, Func::DecodeBase64),
    },
    Function {
        name: "lookup_json_string",
        arity: (2, usize::MAX, "at least 2"),
        compile: |c, a| {
            json_path(c, a)?;
            Ok((Func::LookupJsonString, Type::Bytes))
        },
    },
    Function {
        name: "lookup_json_integer",
        arity: (2, usize::MAX, "at least 2"),
        compile: |c, a| {
            json_path(c, a)?;
            Ok((Func::LookupJsonInteger, Type::Int))
        },
    },
];

/// The function named `name`.
pub(crate) fn function(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

fn mismatch(c: &dyn Typing, expected: &str, arg: &Arg<'_>) -> CompileError {
    c.error(
        ErrorKind::TypeMismatch {
            expected: expected.to_string(),
            found: arg.ty.to_string(),
        },
        arg.span,
    )
}

fn expect(c: &dyn Typing, arg: &Arg<'_>, want: &Type) -> R<()> {
    if arg.ty != want {
        return Err(mismatch(c, &want.to_string(), arg));
    }
    Ok(())
}

fn invalid(c: &dyn Typing, message: &str, arg: &Arg<'_>) -> CompileError {
    c.error(
        ErrorKind::InvalidArgument {
            message: message.to_string(),
        },
        arg.span,
    )
}

/// The argument as a literal string.
fn literal_bytes(c: &dyn Typing, arg: &Arg<'_>, function: &str, what: &str) -> R<Vec<u8>> {
    match arg.literal {
        Some(ConstVal::Bytes(b)) => Ok(b.to_vec()),
        _ => Err(invalid(
            c,
            &format!("the {what} of `{function}` must be a literal string"),
            arg,
        )),
    }
}

/// The argument as a literal integer from `lo` to `hi`, if it is a literal.
fn literal_int(
    c: &dyn Typing,
    arg: &Arg<'_>,
    lo: i64,
    hi: i64,
    function: &str,
    what: &str,
) -> R<Option<i64>> {
    match arg.literal {
        Some(ConstVal::Int(i)) if (lo..=hi).contains(i) => Ok(Some(*i)),
        Some(_) => Err(invalid(
            c,
            &format!("the {what} of `{function}` must be between {lo} and {hi}"),
            arg,
        )),
        None => Ok(None),
    }
}

fn all_or_any(c: &mut dyn Typing, a: &[Arg<'_>], f: Func) -> R<(Func, Type)> {
    if a[0].mapped {
        return Err(c.error(ErrorKind::MisplacedStar, a[0].span));
    }
    expect(c, &a[0], &Type::array(Type::Bool))?;
    Ok((f, Type::Bool))
}

fn bytes_to_bytes(c: &mut dyn Typing, a: &[Arg<'_>], f: Func) -> R<(Func, Type)> {
    expect(c, &a[0], &Type::Bytes)?;
    Ok((f, Type::Bytes))
}

fn two_bytes(c: &mut dyn Typing, a: &[Arg<'_>]) -> R<()> {
    expect(c, &a[0], &Type::Bytes)?;
    expect(c, &a[1], &Type::Bytes)
}

/// A JSON document and the path into it: keys (Bytes) and array positions (Int).
fn json_path(c: &mut dyn Typing, a: &[Arg<'_>]) -> R<()> {
    expect(c, &a[0], &Type::Bytes)?;
    for t in &a[1..] {
        if !matches!(t.ty, Type::Bytes | Type::Int) {
            return Err(mismatch(c, "Bytes or Int (a key or an array position)", t));
        }
    }
    Ok(())
}
