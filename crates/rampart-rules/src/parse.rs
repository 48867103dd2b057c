//! Syntax: tokens to an untyped tree ([`Ast`]). Types are checked later, in
//! `check`, against a scheme.
//!
//! Grammar (precedence from loosest to tightest: `or`, `xor`, `and`, `not`):
//!
//! ```text
//! expr    := xor (("or" | "||") xor)*
//! xor     := and (("xor" | "^^") and)*
//! and     := unary (("and" | "&&") unary)*
//! unary   := ("not" | "!") unary | primary
//! primary := "(" expr ")" | value (cmp_op rhs)?
//! value   := (NAME "(" [expr ("," expr)*] ")" | NAME | STRING | LITERAL) index*
//! index   := "[" (STRING | INT | "*") "]"
//! rhs     := STRING | LITERAL | "{" item* "}" | "$" NAME
//! ```

use crate::error::{CompileError, ErrorKind, Span};
use crate::lexer::{Tok, Token, tokenize};
use crate::scheme::ParserSettings;

/// A comparison operator as written (either spelling maps to one variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    Matches,
    Wildcard,
    StrictWildcard,
    In,
    BitAnd,
}

impl CmpOp {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Contains => "contains",
            CmpOp::Matches => "matches",
            CmpOp::Wildcard => "wildcard",
            CmpOp::StrictWildcard => "strict wildcard",
            CmpOp::In => "in",
            CmpOp::BitAnd => "&",
        }
    }
}

/// `and`, `or` or `xor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogicalOp {
    And,
    Or,
    Xor,
}

/// A literal on the right of a comparison or inside a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Literal {
    /// A quoted string; `content` is undecoded (decoding depends on the operator).
    Str { content: Span, span: Span },
    /// A raw string, taken as is.
    RawStr { content: Span, span: Span },
    /// An unquoted literal: integer, range, IP, CIDR.
    Word { span: Span },
}

impl Literal {
    pub(crate) fn span(&self) -> Span {
        match self {
            Literal::Str { span, .. } | Literal::RawStr { span, .. } | Literal::Word { span } => {
                *span
            }
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rhs {
    Literal(Literal),
    Set { items: Vec<Literal>, span: Span },
    List { name: Span, span: Span },
}

impl Rhs {
    pub(crate) fn span(&self) -> Span {
        match self {
            Rhs::Literal(l) => l.span(),
            Rhs::Set { span, .. } | Rhs::List { span, .. } => *span,
        }
    }
}

/// An index applied to a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IndexKind {
    /// `["key"]` (the literal is a string).
    Key(Literal),
    /// `[0]`.
    Position(Span),
    /// `[*]`.
    Star,
}

/// A node of the untyped tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExprKind {
    Not(Box<Expr>),
    Logical(LogicalOp, Vec<Expr>),
    Compare {
        lhs: Box<Expr>,
        op: CmpOp,
        op_span: Span,
        rhs: Rhs,
    },
    Name,
    Call {
        name: Span,
        args: Vec<Expr>,
    },
    Index {
        base: Box<Expr>,
        index: IndexKind,
    },
    Literal(Literal),
}

/// A node and the span of the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// A parsed, not yet type-checked expression.
#[derive(Debug, Clone)]
pub struct Ast {
    pub(crate) root: Expr,
    pub(crate) source: String,
}

impl Ast {
    /// The expression text this tree was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    settings: &'s ParserSettings,
}

/// Parses `src` into an [`Ast`] under the limits of `settings`.
pub(crate) fn parse(src: &str, settings: &ParserSettings) -> Result<Ast, CompileError> {
    if src.len() > settings.max_expression_length {
        let mut end = settings.max_expression_length;
        while !src.is_char_boundary(end) {
            end -= 1;
        }
        return Err(CompileError::new(
            ErrorKind::ExpressionTooLong {
                length: src.len(),
                max: settings.max_expression_length,
            },
            Span::new(end, src.len()),
            src,
        ));
    }
    let tokens = tokenize(src)?;
    let mut p = Parser {
        src,
        tokens,
        pos: 0,
        depth: 0,
        settings,
    };
    let root = p.expr()?;
    if let Some(t) = p.peek() {
        return Err(p.unexpected(t, "`and`, `or`, `xor` or the end of the expression"));
    }
    Ok(Ast {
        root,
        source: src.to_owned(),
    })
}

const KEYWORDS: &[&str] = &[
    "and", "or", "xor", "not", "eq", "ne", "lt", "le", "gt", "ge", "contains", "matches", "in",
    "wildcard", "strict",
];

impl<'s> Parser<'s> {
    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.pos).copied()
    }

    fn text(&self, span: Span) -> &'s str {
        &self.src[span.start..span.end]
    }

    fn is_word(&self, t: Option<Token>, word: &str) -> bool {
        t.is_some_and(|t| t.tok == Tok::Word && self.text(t.span) == word)
    }

    fn error(&self, kind: ErrorKind, span: Span) -> CompileError {
        CompileError::new(kind, span, self.src)
    }

    fn unexpected(&self, t: Token, expected: &'static str) -> CompileError {
        let found = self.text(t.span).to_owned();
        self.error(ErrorKind::UnexpectedToken { expected, found }, t.span)
    }

    fn end(&self, expected: &'static str) -> CompileError {
        let n = self.src.len();
        self.error(ErrorKind::UnexpectedEnd { expected }, Span::new(n, n))
    }

    fn next(&mut self, expected: &'static str) -> Result<Token, CompileError> {
        let t = self.peek().ok_or_else(|| self.end(expected))?;
        self.pos += 1;
        Ok(t)
    }

    fn expect(&mut self, tok: Tok, expected: &'static str) -> Result<Token, CompileError> {
        let t = self.next(expected)?;
        if t.tok != tok {
            return Err(self.unexpected(t, expected));
        }
        Ok(t)
    }

    fn enter(&mut self, span: Span) -> Result<(), CompileError> {
        self.depth += 1;
        if self.depth > self.settings.max_nesting_depth {
            return Err(self.error(
                ErrorKind::NestingTooDeep {
                    max: self.settings.max_nesting_depth,
                },
                span,
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, CompileError> {
        self.logical(LogicalOp::Or)
    }

    fn logical(&mut self, op: LogicalOp) -> Result<Expr, CompileError> {
        let (word, sym, tighter) = match op {
            LogicalOp::Or => ("or", Tok::OrOr, Some(LogicalOp::Xor)),
            LogicalOp::Xor => ("xor", Tok::XorXor, Some(LogicalOp::And)),
            LogicalOp::And => ("and", Tok::AndAnd, None),
        };
        let operand = |p: &mut Self| match tighter {
            Some(t) => p.logical(t),
            None => p.unary(),
        };
        let first = operand(self)?;
        let mut items = vec![first];
        loop {
            let t = self.peek();
            if t.is_some_and(|t| t.tok == sym) || self.is_word(t, word) {
                self.pos += 1;
                items.push(operand(self)?);
            } else {
                break;
            }
        }
        if items.len() == 1 {
            return Ok(items.pop().expect("one item"));
        }
        let span = items[0].span.to(items[items.len() - 1].span);
        Ok(Expr {
            kind: ExprKind::Logical(op, items),
            span,
        })
    }

    fn unary(&mut self) -> Result<Expr, CompileError> {
        let t = self.peek().ok_or_else(|| self.end("an expression"))?;
        if t.tok == Tok::Bang || self.is_word(Some(t), "not") {
            self.pos += 1;
            self.enter(t.span)?;
            let inner = self.unary()?;
            self.depth -= 1;
            let span = t.span.to(inner.span);
            return Ok(Expr {
                kind: ExprKind::Not(Box::new(inner)),
                span,
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, CompileError> {
        let t = self.peek().ok_or_else(|| self.end("an expression"))?;
        if t.tok == Tok::LParen {
            self.pos += 1;
            self.enter(t.span)?;
            let inner = self.expr()?;
            self.depth -= 1;
            self.expect(Tok::RParen, "`)`")?;
            return Ok(inner);
        }
        let value = self.value()?;
        let Some((op, op_span)) = self.cmp_op() else {
            return Ok(value);
        };
        let rhs = self.rhs(op)?;
        let span = value.span.to(rhs.span());
        Ok(Expr {
            kind: ExprKind::Compare {
                lhs: Box::new(value),
                op,
                op_span,
                rhs,
            },
            span,
        })
    }

    fn cmp_op(&mut self) -> Option<(CmpOp, Span)> {
        let t = self.peek()?;
        let op = match t.tok {
            Tok::EqEq => CmpOp::Eq,
            Tok::NotEq => CmpOp::Ne,
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::Gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            Tok::Tilde => CmpOp::Matches,
            Tok::Amp => CmpOp::BitAnd,
            Tok::Word => match self.text(t.span) {
                "eq" => CmpOp::Eq,
                "ne" => CmpOp::Ne,
                "lt" => CmpOp::Lt,
                "le" => CmpOp::Le,
                "gt" => CmpOp::Gt,
                "ge" => CmpOp::Ge,
                "contains" => CmpOp::Contains,
                "matches" => CmpOp::Matches,
                "wildcard" => CmpOp::Wildcard,
                "in" => CmpOp::In,
                "strict" if self.is_word(self.tokens.get(self.pos + 1).copied(), "wildcard") => {
                    let second = self.tokens[self.pos + 1];
                    self.pos += 2;
                    return Some((CmpOp::StrictWildcard, t.span.to(second.span)));
                }
                _ => return None,
            },
            _ => return None,
        };
        self.pos += 1;
        Some((op, t.span))
    }

    fn literal(&mut self, expected: &'static str) -> Result<Literal, CompileError> {
        let t = self.next(expected)?;
        match t.tok {
            Tok::Str { content } => Ok(Literal::Str {
                content,
                span: t.span,
            }),
            Tok::RawStr { content } => Ok(Literal::RawStr {
                content,
                span: t.span,
            }),
            Tok::Word if !KEYWORDS.contains(&self.text(t.span)) => {
                Ok(Literal::Word { span: t.span })
            }
            _ => Err(self.unexpected(t, expected)),
        }
    }

    fn rhs(&mut self, op: CmpOp) -> Result<Rhs, CompileError> {
        if op != CmpOp::In {
            return Ok(Rhs::Literal(self.literal("a literal value")?));
        }
        let t = self
            .peek()
            .ok_or_else(|| self.end("`{`, `$list` or a literal"))?;
        match t.tok {
            Tok::LBrace => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    let n = self.peek().ok_or_else(|| self.end("`}`"))?;
                    if n.tok == Tok::RBrace {
                        self.pos += 1;
                        return Ok(Rhs::Set {
                            items,
                            span: t.span.to(n.span),
                        });
                    }
                    if items.len() >= self.settings.max_set_items {
                        return Err(self.error(
                            ErrorKind::TooManySetItems {
                                max: self.settings.max_set_items,
                            },
                            n.span,
                        ));
                    }
                    // Commas between items are tolerated, as some tools emit them.
                    if n.tok == Tok::Comma {
                        self.pos += 1;
                        continue;
                    }
                    items.push(self.literal("a literal or `}`")?);
                }
            }
            Tok::Dollar => {
                self.pos += 1;
                let name = self.expect(Tok::Word, "a list name after `$`")?;
                Ok(Rhs::List {
                    name: name.span,
                    span: t.span.to(name.span),
                })
            }
            _ => Ok(Rhs::Literal(self.literal("`{`, `$list` or a literal")?)),
        }
    }

    fn value(&mut self) -> Result<Expr, CompileError> {
        let t = self.next("a field, function call or literal")?;
        let mut expr = match t.tok {
            Tok::Str { content } => Expr {
                kind: ExprKind::Literal(Literal::Str {
                    content,
                    span: t.span,
                }),
                span: t.span,
            },
            Tok::RawStr { content } => Expr {
                kind: ExprKind::Literal(Literal::RawStr {
                    content,
                    span: t.span,
                }),
                span: t.span,
            },
            Tok::Word if KEYWORDS.contains(&self.text(t.span)) => {
                return Err(self.unexpected(t, "a field, function call or literal"));
            }
            Tok::Word => {
                let text = self.text(t.span);
                let first = text.as_bytes()[0];
                let is_name =
                    (first.is_ascii_alphabetic() || first == b'_') && !text.contains([':', '/']);
                if is_name && self.peek().is_some_and(|n| n.tok == Tok::LParen) {
                    self.call(t)?
                } else if is_name {
                    Expr {
                        kind: ExprKind::Name,
                        span: t.span,
                    }
                } else {
                    Expr {
                        kind: ExprKind::Literal(Literal::Word { span: t.span }),
                        span: t.span,
                    }
                }
            }
            _ => return Err(self.unexpected(t, "a field, function call or literal")),
        };
        let base_depth = self.depth;
        while let Some(open) = self.peek().filter(|n| n.tok == Tok::LBracket) {
            self.pos += 1;
            self.enter(open.span)?;
            let n = self.next("an index")?;
            let index = match n.tok {
                Tok::Star => IndexKind::Star,
                Tok::Str { content } => IndexKind::Key(Literal::Str {
                    content,
                    span: n.span,
                }),
                Tok::RawStr { content } => IndexKind::Key(Literal::RawStr {
                    content,
                    span: n.span,
                }),
                Tok::Word => IndexKind::Position(n.span),
                _ => return Err(self.unexpected(n, "a string key, an integer or `*`")),
            };
            let close = self.expect(Tok::RBracket, "`]`")?;
            let span = expr.span.to(close.span);
            expr = Expr {
                kind: ExprKind::Index {
                    base: Box::new(expr),
                    index,
                },
                span,
            };
        }
        self.depth = base_depth;
        Ok(expr)
    }

    fn call(&mut self, name: Token) -> Result<Expr, CompileError> {
        let open = self.expect(Tok::LParen, "`(`")?;
        self.enter(open.span)?;
        let mut args = Vec::new();
        if self.peek().is_some_and(|t| t.tok == Tok::RParen) {
            self.pos += 1;
        } else {
            loop {
                args.push(self.expr()?);
                let t = self.next("`,` or `)`")?;
                match t.tok {
                    Tok::Comma => continue,
                    Tok::RParen => break,
                    _ => return Err(self.unexpected(t, "`,` or `)`")),
                }
            }
        }
        self.depth -= 1;
        let close = self.tokens[self.pos - 1];
        Ok(Expr {
            kind: ExprKind::Call {
                name: name.span,
                args,
            },
            span: name.span.to(close.span),
        })
    }
}
