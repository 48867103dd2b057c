//! Type-checking: resolves names against the scheme, checks every operator
//! and function against the types of its operands, and lowers the tree to
//! compiled [`Node`]s (regexes, sets and templates built once, here).

use std::sync::Arc;

use memchr::memmem;

use crate::compile::{
    BytesSet, IpMatcher, Matcher, MatcherCache, OrdOp, RangeSet, Word, canonical_ip, parse_int,
    parse_word,
};
use crate::error::{CompileError, ErrorKind, Span, suggest};
use crate::exec::{ConstVal, IndexKey, Node};
use crate::functions::{Arg, FUNCTIONS, Typing, function};
use crate::ipset::Prefix;
use crate::lexer::{decode_basic, decode_regex};
use crate::lists::Lists;
use crate::parse::{CmpOp, Expr, ExprKind, IndexKind, Literal, LogicalOp, Rhs};
use crate::scheme::{ParserSettings, Scheme};
use crate::types::Type;

/// A checked sub-expression.
struct Typed {
    node: Node,
    ty: Type,
    /// The value is one element of an array unpacked with `[*]`.
    mapped: bool,
    span: Span,
    /// The literal, when the sub-expression is one.
    literal: Option<ConstVal>,
}

pub(crate) struct Checker<'a> {
    pub src: &'a str,
    pub scheme: &'a Scheme,
    pub lists: &'a Lists,
    pub settings: &'a ParserSettings,
    pub cache: &'a mut MatcherCache,
    pub fn_depth: usize,
}

type R<T> = Result<T, CompileError>;

impl Typing for Checker<'_> {
    fn error(&self, kind: ErrorKind, span: Span) -> CompileError {
        self.err(kind, span)
    }

    fn regex(&mut self, pattern: &str, span: Span) -> R<regex::bytes::Regex> {
        Checker::regex(self, pattern, span)
    }

    fn wildcard(
        &mut self,
        pattern: &[u8],
        case_insensitive: bool,
        span: Span,
    ) -> R<Arc<crate::compile::Wildcard>> {
        let s = self.settings;
        self.cache
            .wildcard(
                pattern,
                case_insensitive,
                true,
                s.max_wildcard_stars,
                s.max_regex_size,
            )
            .map_err(|k| self.err(k, span))
    }

    fn max_value_length(&self) -> usize {
        self.settings.max_value_length
    }
}

impl Checker<'_> {
    fn err(&self, kind: ErrorKind, span: Span) -> CompileError {
        CompileError::new(kind, span, self.src)
    }

    fn text(&self, span: Span) -> &str {
        &self.src[span.start..span.end]
    }

    fn mismatch(&self, expected: impl ToString, found: impl ToString, span: Span) -> CompileError {
        self.err(
            ErrorKind::TypeMismatch {
                expected: expected.to_string(),
                found: found.to_string(),
            },
            span,
        )
    }

    /// Checks a whole expression, which must be a Bool.
    pub(crate) fn root(&mut self, e: &Expr) -> R<Node> {
        let t = self.expr(e, false)?;
        if t.ty != Type::Bool {
            return Err(self.err(
                ErrorKind::NotABoolean {
                    found: t.ty.to_string(),
                },
                t.span,
            ));
        }
        Ok(t.node)
    }

    /// Checks a whole value expression, which must be a string (Bytes).
    pub(crate) fn root_string(&mut self, e: &Expr) -> R<Node> {
        let t = self.expr(e, false)?;
        if t.ty != Type::Bytes {
            return Err(self.err(
                ErrorKind::NotAString {
                    found: t.ty.to_string(),
                },
                t.span,
            ));
        }
        Ok(t.node)
    }

    fn expect_ty(&self, t: &Typed, want: &Type) -> R<()> {
        if t.ty != *want {
            return Err(self.mismatch(want, &t.ty, t.span));
        }
        Ok(())
    }

    fn expr(&mut self, e: &Expr, allow_mapped: bool) -> R<Typed> {
        let typed = |node, ty| Typed {
            node,
            ty,
            mapped: false,
            span: e.span,
            literal: None,
        };
        match &e.kind {
            ExprKind::Not(inner) => {
                let t = self.expr(inner, false)?;
                if t.ty == Type::Bool {
                    Ok(typed(Node::Not(Box::new(t.node)), Type::Bool))
                } else if t.ty == Type::array(Type::Bool) && self.fn_depth > 0 {
                    Ok(typed(Node::NotEach(Box::new(t.node)), t.ty))
                } else {
                    Err(self.mismatch(Type::Bool, &t.ty, t.span))
                }
            }
            ExprKind::Logical(op, items) => {
                let mut nodes = Vec::with_capacity(items.len());
                for item in items {
                    let t = self.expr(item, false)?;
                    self.expect_ty(&t, &Type::Bool)?;
                    nodes.push(t.node);
                }
                let node = match op {
                    LogicalOp::And => Node::And(nodes),
                    LogicalOp::Or => Node::Or(nodes),
                    LogicalOp::Xor => Node::Xor(nodes),
                };
                Ok(typed(node, Type::Bool))
            }
            ExprKind::Compare {
                lhs,
                op,
                op_span,
                rhs,
            } => {
                let l = self.expr(lhs, self.fn_depth > 0)?;
                let (matcher, negate) = self.matcher(&l.ty, *op, *op_span, rhs)?;
                let node = match l.node {
                    Node::Field(field) if !l.mapped => Node::FieldCompare {
                        field,
                        matcher,
                        negate,
                    },
                    lhs => Node::Compare {
                        lhs: Box::new(lhs),
                        matcher: Box::new(matcher),
                        negate,
                        mapped: l.mapped,
                    },
                };
                let ty = if l.mapped {
                    Type::array(Type::Bool)
                } else {
                    Type::Bool
                };
                Ok(typed(node, ty))
            }
            ExprKind::Name => {
                let name = self.text(e.span);
                match self.scheme.field(name) {
                    Some((id, ty)) => Ok(typed(Node::Field(id), ty.clone())),
                    // `true` and `false`, unless the scheme declares fields of those names.
                    None if name == "true" || name == "false" => Ok(typed(
                        Node::Const(ConstVal::Bool(name == "true")),
                        Type::Bool,
                    )),
                    None => Err(self.err(
                        ErrorKind::UnknownField {
                            name: name.to_owned(),
                            suggestion: suggest(name, self.scheme.fields().map(|(_, n, _)| n)),
                        },
                        e.span,
                    )),
                }
            }
            ExprKind::Literal(lit) => {
                let (c, ty) = match lit {
                    Literal::Word { span } => match parse_word(self.text(*span)) {
                        Ok(Word::Int(i)) => (ConstVal::Int(i), Type::Int),
                        Ok(Word::Ip(ip)) => (ConstVal::Ip(ip), Type::Ip),
                        Ok(other) => {
                            return Err(self.err(
                                ErrorKind::InvalidArgument {
                                    message: format!(
                                        "a {} is only allowed after `in`",
                                        other.type_name()
                                    ),
                                },
                                *span,
                            ));
                        }
                        Err(we) => return Err(self.err(we.into_kind(), *span)),
                    },
                    _ => (ConstVal::Bytes(self.lit_bytes(lit)?.into()), Type::Bytes),
                };
                Ok(Typed {
                    node: Node::Const(c.clone()),
                    ty,
                    mapped: false,
                    span: e.span,
                    literal: Some(c),
                })
            }
            ExprKind::Index { base, index } => {
                // `a[*][0]`: an index after `[*]` applies to each element.
                let b = self.expr(base, allow_mapped)?;
                if b.mapped {
                    return self.index_each(b, index, e.span);
                }
                match index {
                    IndexKind::Star => {
                        if !allow_mapped {
                            return Err(self.err(ErrorKind::MisplacedStar, e.span));
                        }
                        match &b.ty {
                            Type::Array(inner) | Type::Map(inner) => Ok(Typed {
                                node: b.node,
                                ty: (**inner).clone(),
                                mapped: true,
                                span: e.span,
                                literal: None,
                            }),
                            other => Err(self.mismatch("an Array or a Map", other, b.span)),
                        }
                    }
                    IndexKind::Key(lit) => {
                        let Type::Map(inner) = &b.ty else {
                            return Err(self.mismatch(
                                "a Map (indexed by a string)",
                                &b.ty,
                                b.span,
                            ));
                        };
                        let key = self.lit_bytes(lit)?;
                        Ok(typed(
                            Node::Index(Box::new(b.node), IndexKey::Key(key.into())),
                            (**inner).clone(),
                        ))
                    }
                    IndexKind::Position(span) => {
                        let Type::Array(inner) = &b.ty else {
                            return Err(self.mismatch(
                                "an Array (indexed by a number)",
                                &b.ty,
                                b.span,
                            ));
                        };
                        let pos = self.position(*span)?;
                        Ok(typed(
                            Node::Index(Box::new(b.node), IndexKey::Position(pos)),
                            (**inner).clone(),
                        ))
                    }
                }
            }
            ExprKind::Call { name, args } => self.call(e.span, *name, args),
        }
    }

    /// The array index written at `at`.
    fn position(&self, at: Span) -> R<usize> {
        parse_int(self.text(at))
            .and_then(|i| usize::try_from(i).ok())
            .ok_or_else(|| {
                self.err(
                    ErrorKind::InvalidArgument {
                        message: "an array index must be a non-negative integer".into(),
                    },
                    at,
                )
            })
    }

    /// An index after `[*]` (`names[*][0]`, `args[*]["k"]`): applied to each element of the
    /// array `b` stands for; the result is mapped too.
    fn index_each(&mut self, b: Typed, index: &IndexKind, span: Span) -> R<Typed> {
        let (key, inner) = match (index, &b.ty) {
            (IndexKind::Position(at), Type::Array(inner)) => {
                (IndexKey::Position(self.position(*at)?), inner)
            }
            (IndexKind::Key(lit), Type::Map(inner)) => {
                (IndexKey::Key(self.lit_bytes(lit)?.into()), inner)
            }
            (IndexKind::Star, _) => return Err(self.err(ErrorKind::MisplacedStar, span)),
            (_, other) => return Err(self.mismatch("an Array or a Map", other, b.span)),
        };
        Ok(Typed {
            ty: (**inner).clone(),
            node: Node::IndexEach(Box::new(b.node), key),
            mapped: true,
            span,
            literal: None,
        })
    }

    fn lit_bytes(&self, lit: &Literal) -> R<Vec<u8>> {
        match lit {
            Literal::Str { content, .. } => {
                decode_basic(self.text(*content), content.start, self.src)
            }
            Literal::RawStr { content, .. } => Ok(self.text(*content).as_bytes().to_vec()),
            Literal::Word { span } => {
                let found =
                    parse_word(self.text(*span)).map_or("an unquoted literal", |w| w.type_name());
                Err(self.mismatch("Bytes (a quoted string)", found, *span))
            }
        }
    }

    fn lit_regex(&self, lit: &Literal) -> R<String> {
        match lit {
            Literal::Str { content, .. } => Ok(decode_regex(self.text(*content))),
            Literal::RawStr { content, .. } => Ok(self.text(*content).to_owned()),
            Literal::Word { .. } => {
                self.lit_bytes(lit)?;
                unreachable!("lit_bytes rejects words")
            }
        }
    }

    fn lit_word(&self, lit: &Literal, expected: &Type) -> R<Word> {
        match lit {
            Literal::Word { span } => {
                parse_word(self.text(*span)).map_err(|we| self.err(we.into_kind(), *span))
            }
            other => Err(self.mismatch(expected, Type::Bytes, other.span())),
        }
    }

    fn regex(&mut self, pattern: &str, span: Span) -> R<regex::bytes::Regex> {
        let max = self.settings.max_regex_size;
        self.cache
            .regex(pattern, max)
            .map_err(|k| self.err(k, span))
    }

    fn matcher(&mut self, ty: &Type, op: CmpOp, op_span: Span, rhs: &Rhs) -> R<(Matcher, bool)> {
        let unsupported = |c: &Self| {
            c.err(
                ErrorKind::UnsupportedOperator {
                    op: op.as_str().to_owned(),
                    ty: ty.to_string(),
                },
                op_span,
            )
        };
        let single = |c: &Self| match rhs {
            Rhs::Literal(l) => Ok(l.clone()),
            other => Err(c.err(
                ErrorKind::UnexpectedToken {
                    expected: "a single literal value",
                    found: c.text(other.span()).to_owned(),
                },
                other.span(),
            )),
        };
        let ord = match op {
            CmpOp::Lt => Some(OrdOp::Lt),
            CmpOp::Le => Some(OrdOp::Le),
            CmpOp::Gt => Some(OrdOp::Gt),
            CmpOp::Ge => Some(OrdOp::Ge),
            _ => None,
        };
        let negate = op == CmpOp::Ne;
        if let Rhs::List { name, .. } = rhs {
            let list_name = self.text(*name);
            let list = self.lists.get(list_name).ok_or_else(|| {
                self.err(
                    ErrorKind::UnknownList {
                        name: list_name.to_owned(),
                    },
                    rhs.span(),
                )
            })?;
            if list.item_type() != *ty {
                return Err(self.mismatch(
                    ty,
                    format!("a list of {}", list.item_type()),
                    rhs.span(),
                ));
            }
            return Ok((Matcher::List(Arc::clone(list)), false));
        }
        let items: Vec<Literal> = match rhs {
            Rhs::Set { items, .. } => items.clone(),
            Rhs::Literal(l) => vec![l.clone()],
            Rhs::List { .. } => unreachable!("handled above"),
        };
        let m = match ty {
            Type::Bytes => match op {
                CmpOp::Eq | CmpOp::Ne => Matcher::BytesEq(self.lit_bytes(&single(self)?)?.into()),
                CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => Matcher::BytesOrd(
                    ord.expect("ordering op"),
                    self.lit_bytes(&single(self)?)?.into(),
                ),
                CmpOp::Contains => Matcher::Contains(Box::new(
                    memmem::Finder::new(&self.lit_bytes(&single(self)?)?).into_owned(),
                )),
                CmpOp::Matches => {
                    let lit = single(self)?;
                    let pattern = self.lit_regex(&lit)?;
                    Matcher::Regex(self.regex(&pattern, lit.span())?)
                }
                CmpOp::Wildcard | CmpOp::StrictWildcard => {
                    let lit = single(self)?;
                    let pattern = self.lit_bytes(&lit)?;
                    let s = self.settings;
                    let w = self
                        .cache
                        .wildcard(
                            &pattern,
                            op == CmpOp::Wildcard,
                            false,
                            s.max_wildcard_stars,
                            s.max_regex_size,
                        )
                        .map_err(|k| self.err(k, lit.span()))?;
                    Matcher::Wildcard(w)
                }
                CmpOp::In => {
                    let mut set = Vec::with_capacity(items.len());
                    for item in &items {
                        set.push(self.lit_bytes(item)?);
                    }
                    Matcher::BytesIn(BytesSet::new(set))
                }
                CmpOp::BitAnd => return Err(unsupported(self)),
            },
            Type::Int => {
                let int = |c: &Self, lit: &Literal| match c.lit_word(lit, &Type::Int)? {
                    Word::Int(i) => Ok(i),
                    other => Err(c.mismatch(Type::Int, other.type_name(), lit.span())),
                };
                match op {
                    CmpOp::Eq | CmpOp::Ne => Matcher::IntEq(int(self, &single(self)?)?),
                    CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => {
                        Matcher::IntOrd(ord.expect("ordering op"), int(self, &single(self)?)?)
                    }
                    CmpOp::BitAnd => Matcher::BitAnd(int(self, &single(self)?)?),
                    CmpOp::In => {
                        let mut ranges = Vec::with_capacity(items.len());
                        for item in &items {
                            ranges.push(match self.lit_word(item, &Type::Int)? {
                                Word::Int(i) => (i, i),
                                Word::IntRange(a, b) => (a, b),
                                other => {
                                    return Err(self.mismatch(
                                        Type::Int,
                                        other.type_name(),
                                        item.span(),
                                    ));
                                }
                            });
                        }
                        Matcher::IntIn(RangeSet::new(ranges))
                    }
                    _ => return Err(unsupported(self)),
                }
            }
            Type::Ip => match op {
                CmpOp::Eq | CmpOp::Ne => {
                    let lit = single(self)?;
                    match self.lit_word(&lit, &Type::Ip)? {
                        Word::Ip(ip) => Matcher::IpEq(canonical_ip(ip)),
                        other => {
                            return Err(self.mismatch(
                                "Ip (use `in` for ranges)",
                                other.type_name(),
                                lit.span(),
                            ));
                        }
                    }
                }
                CmpOp::In => {
                    let mut prefixes = Vec::with_capacity(items.len());
                    for item in &items {
                        match self.lit_word(item, &Type::Ip)? {
                            Word::Ip(ip) => prefixes.push(Prefix::new(ip, 128)),
                            Word::Cidr(ip, len) => prefixes.push(Prefix::new(ip, len)),
                            Word::IpRange(a, b) => prefixes.extend(Prefix::range(a, b)),
                            other => {
                                return Err(self.mismatch(
                                    Type::Ip,
                                    other.type_name(),
                                    item.span(),
                                ));
                            }
                        }
                    }
                    Matcher::IpIn(IpMatcher::new(prefixes))
                }
                _ => return Err(unsupported(self)),
            },
            _ => return Err(unsupported(self)),
        };
        Ok((m, negate))
    }

    fn call(&mut self, span: Span, name_span: Span, args: &[Expr]) -> R<Typed> {
        let name = self.text(name_span).to_owned();
        let Some(function) = function(&name) else {
            return Err(self.err(
                ErrorKind::UnknownFunction {
                    suggestion: suggest(&name, FUNCTIONS.iter().map(|f| f.name)),
                    name,
                },
                name_span,
            ));
        };
        let (min, max, expected) = function.arity;
        if args.len() < min || args.len() > max {
            return Err(self.err(
                ErrorKind::WrongArgumentCount {
                    function: function.name,
                    expected,
                    found: args.len(),
                },
                span,
            ));
        }
        self.fn_depth += 1;
        let mut typed = Vec::with_capacity(args.len());
        for (i, a) in args.iter().enumerate() {
            typed.push(self.expr(a, i == 0)?);
        }
        self.fn_depth -= 1;
        let view: Vec<Arg<'_>> = typed
            .iter()
            .map(|t| Arg {
                ty: &t.ty,
                span: t.span,
                mapped: t.mapped,
                literal: t.literal.as_ref(),
            })
            .collect();
        let (func, ret) = (function.compile)(self, &view)?;
        let first = &typed[0];
        for t in &typed[1..] {
            if t.mapped {
                return Err(self.err(ErrorKind::MisplacedStar, t.span));
            }
        }
        let mapped = first.mapped;
        let ty = if mapped { Type::array(ret) } else { ret };
        Ok(Typed {
            node: Node::Call {
                func: Box::new(func),
                args: typed.into_iter().map(|t| t.node).collect(),
                mapped,
            },
            ty,
            mapped: false,
            span,
            literal: None,
        })
    }
}
