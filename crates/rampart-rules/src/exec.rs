//! Execution: the compiled tree ([`Node`]) evaluated against an
//! [`ExecutionContext`] whose fields the host fills lazily.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::net::IpAddr;

use crate::compile::Matcher;
use crate::functions::Func;
use crate::scheme::{FieldId, Scheme};
use crate::types::{MapValue, Value};

/// Supplies field values for one request, on demand.
///
/// The engine asks for a field only the first time an expression reads it
/// during one [`ExecutionContext`], and remembers the answer, so a field no
/// rule reads costs nothing. Returning `None` (or a value of the wrong type)
/// makes the field its type's empty value: `""`, `0`, `false`, `0.0.0.0`, an
/// empty array or map. Reading a field never fails at run time.
///
/// ```
/// use rampart_rules::{Compiler, ExecutionContext, FieldId, FieldSource, Scheme, Type, Value};
///
/// struct Packet { port: i64 }
/// impl FieldSource for Packet {
///     fn field(&self, _id: FieldId, name: &str) -> Option<Value<'_>> {
///         match name {
///             "tcp.port" => Some(Value::Int(self.port)),
///             _ => None,
///         }
///     }
/// }
///
/// let mut scheme = Scheme::new();
/// scheme.add_field("tcp.port", Type::Int).unwrap();
/// scheme.add_field("tcp.flags", Type::Int).unwrap();
/// let filter = Compiler::new(&scheme).compile("tcp.port in {80 443} and tcp.flags eq 0").unwrap();
/// let packet = Packet { port: 443 };
/// assert!(filter.execute(&ExecutionContext::new(&scheme, &packet)));
/// ```
pub trait FieldSource {
    /// The value of `field` (called `name` in the scheme) for this request.
    fn field(&self, field: FieldId, name: &str) -> Option<Value<'_>>;
}

impl<F> FieldSource for F
where
    F: Fn(FieldId, &str) -> Option<Value<'static>>,
{
    fn field(&self, field: FieldId, name: &str) -> Option<Value<'_>> {
        self(field, name)
    }
}

/// The state of evaluating rules against one request: the host's
/// [`FieldSource`] and the fields read so far. Create one per request and
/// reuse it for every filter and rule set of that request (custom rules,
/// then rate limiting rules), so each field is computed at most once.
pub struct ExecutionContext<'s> {
    scheme: &'s Scheme,
    source: &'s (dyn FieldSource + Sync),
    cache: Box<[OnceCell<Value<'s>>]>,
}

impl<'s> ExecutionContext<'s> {
    /// A context reading fields of `scheme` from `source`.
    pub fn new(scheme: &'s Scheme, source: &'s (dyn FieldSource + Sync)) -> Self {
        ExecutionContext {
            scheme,
            source,
            cache: (0..scheme.len()).map(|_| OnceCell::new()).collect(),
        }
    }

    /// The value of a field, asking the source on first read.
    #[inline]
    pub fn field(&self, id: FieldId) -> Option<&Value<'s>> {
        let cell = self.cache.get(id.index())?;
        Some(cell.get_or_init(|| {
            let name = self.scheme.field_name(id).unwrap_or("");
            match (self.scheme.field_type(id), self.source.field(id, name)) {
                (Some(ty), Some(v)) if v.fits(ty) => v,
                (Some(ty), _) => ty.empty_value(),
                (None, _) => Value::Bool(false),
            }
        }))
    }

    /// Whether the field has been read (and so computed) in this context.
    pub fn is_field_read(&self, id: FieldId) -> bool {
        self.cache
            .get(id.index())
            .is_some_and(|c| c.get().is_some())
    }
}

/// A value during evaluation. Borrows from the context where it can.
#[derive(Debug, Clone)]
pub(crate) enum Val<'c> {
    Bool(bool),
    Int(i64),
    Bytes(Cow<'c, [u8]>),
    Ip(IpAddr),
    Array(Vec<Val<'c>>),
    ArrayRef(&'c [Value<'c>]),
    MapRef(&'c MapValue<'c>),
}

impl<'c> Val<'c> {
    pub(crate) fn from_ref(v: &'c Value<'c>) -> Val<'c> {
        match v {
            Value::Bool(b) => Val::Bool(*b),
            Value::Int(i) => Val::Int(*i),
            Value::Bytes(b) => Val::Bytes(Cow::Borrowed(b)),
            Value::Ip(ip) => Val::Ip(*ip),
            Value::Array(a) => Val::ArrayRef(a),
            Value::Map(m) => Val::MapRef(m),
        }
    }

    pub(crate) fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Val::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> bool {
        matches!(self, Val::Bool(true))
    }

    /// The elements of an array, or the values of a map.
    pub(crate) fn into_elements(self) -> Vec<Val<'c>> {
        match self {
            Val::Array(v) => v,
            Val::ArrayRef(a) => a.iter().map(Val::from_ref).collect(),
            Val::MapRef(m) => m.values().map(Val::from_ref).collect(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> Option<usize> {
        match self {
            Val::Bytes(b) => Some(b.len()),
            Val::Array(v) => Some(v.len()),
            Val::ArrayRef(a) => Some(a.len()),
            Val::MapRef(m) => Some(m.len()),
            _ => None,
        }
    }
}

/// An index into a value.
#[derive(Debug, Clone)]
pub(crate) enum IndexKey {
    Position(usize),
    Key(Box<[u8]>),
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Field(FieldId),
    Const(ConstVal),
    Index(Box<Node>, IndexKey),
    /// The index applied to each element of an array (`names[*][0]`): an array of the
    /// elements that have it.
    IndexEach(Box<Node>, IndexKey),
    /// A function call. When `mapped`, `args[0]` yields an array and the
    /// function is applied to each element, giving an array.
    Call {
        func: Box<Func>,
        args: Vec<Node>,
        mapped: bool,
    },
    /// A comparison; `negate` turns `eq` into `ne` for present values
    /// (a missing value compares false either way). When `mapped`, `lhs`
    /// yields an array and the result is an array of Bool.
    Compare {
        lhs: Box<Node>,
        matcher: Box<Matcher>,
        negate: bool,
        mapped: bool,
    },
    /// A comparison of a field's own value (the common case, kept direct).
    FieldCompare {
        field: FieldId,
        negate: bool,
        matcher: Matcher,
    },
    Not(Box<Node>),
    /// `not` applied to each element of an `Array<Bool>`.
    NotEach(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Xor(Vec<Node>),
}

/// A literal used as a value (a function argument).
#[derive(Debug, Clone)]
pub(crate) enum ConstVal {
    Bool(bool),
    Int(i64),
    Bytes(Box<[u8]>),
    Ip(IpAddr),
}

/// `v[key]`: `None` when `v` has no such element.
fn index<'c>(v: Val<'c>, key: &IndexKey) -> Option<Val<'c>> {
    match (v, key) {
        (Val::ArrayRef(a), IndexKey::Position(i)) => a.get(*i).map(Val::from_ref),
        (Val::Array(a), IndexKey::Position(i)) => a.into_iter().nth(*i),
        (Val::MapRef(m), IndexKey::Key(k)) => m.get(&k[..]).map(Val::from_ref),
        _ => None,
    }
}

impl Node {
    /// Calls `f` with every field the node reads (a field read twice, twice).
    pub(crate) fn each_field(&self, f: &mut impl FnMut(FieldId)) {
        match self {
            Node::Field(id) | Node::FieldCompare { field: id, .. } => f(*id),
            Node::Const(_) => {}
            Node::Index(inner, _)
            | Node::IndexEach(inner, _)
            | Node::Not(inner)
            | Node::NotEach(inner) => inner.each_field(f),
            Node::Call { args, .. } => args.iter().for_each(|a| a.each_field(f)),
            Node::Compare { lhs, .. } => lhs.each_field(f),
            Node::And(items) | Node::Or(items) | Node::Xor(items) => {
                items.iter().for_each(|n| n.each_field(f));
            }
        }
    }

    /// Evaluates a Bool-typed node.
    pub(crate) fn eval_bool(&self, ctx: &ExecutionContext<'_>) -> bool {
        match self {
            Node::FieldCompare {
                field,
                matcher,
                negate,
            } => match ctx.field(*field) {
                Some(v) => matcher.matches_value(v) != *negate,
                None => false,
            },
            Node::Compare {
                lhs,
                matcher,
                negate,
                mapped: false,
            } => match lhs.eval(ctx) {
                Some(v) => matcher.matches(&v) != *negate,
                None => false,
            },
            Node::Not(inner) => !inner.eval_bool(ctx),
            Node::And(items) => items.iter().all(|n| n.eval_bool(ctx)),
            Node::Or(items) => items.iter().any(|n| n.eval_bool(ctx)),
            Node::Xor(items) => items.iter().fold(false, |acc, n| acc ^ n.eval_bool(ctx)),
            other => other.eval(ctx).is_some_and(|v| v.as_bool()),
        }
    }

    /// Evaluates any node; `None` is a missing value (a map key that is not
    /// there, an index past the end, a function given a missing value).
    pub(crate) fn eval<'c>(&'c self, ctx: &'c ExecutionContext<'_>) -> Option<Val<'c>> {
        match self {
            Node::Field(id) => ctx.field(*id).map(Val::from_ref),
            Node::Const(c) => Some(match c {
                ConstVal::Bool(b) => Val::Bool(*b),
                ConstVal::Int(i) => Val::Int(*i),
                ConstVal::Bytes(b) => Val::Bytes(Cow::Borrowed(b)),
                ConstVal::Ip(ip) => Val::Ip(*ip),
            }),
            Node::Index(base, key) => index(base.eval(ctx)?, key),
            Node::IndexEach(base, key) => Some(Val::Array(
                base.eval(ctx)?
                    .into_elements()
                    .into_iter()
                    .filter_map(|e| index(e, key))
                    .collect(),
            )),
            Node::Call { func, args, mapped } => {
                if *mapped {
                    let elements = args[0].eval(ctx)?.into_elements();
                    let rest = args[1..]
                        .iter()
                        .map(|a| a.eval(ctx))
                        .collect::<Option<Vec<_>>>()?;
                    let mut out = Vec::with_capacity(elements.len());
                    for e in elements {
                        let mut call_args = Vec::with_capacity(args.len());
                        call_args.push(e);
                        call_args.extend(rest.iter().cloned());
                        if let Some(r) = func.call(call_args) {
                            out.push(r);
                        }
                    }
                    Some(Val::Array(out))
                } else {
                    let values = args
                        .iter()
                        .map(|a| a.eval(ctx))
                        .collect::<Option<Vec<_>>>()?;
                    func.call(values)
                }
            }
            Node::Compare {
                lhs,
                matcher,
                negate,
                mapped: true,
            } => {
                let elements = lhs.eval(ctx)?.into_elements();
                Some(Val::Array(
                    elements
                        .iter()
                        .map(|e| Val::Bool(matcher.matches(e) != *negate))
                        .collect(),
                ))
            }
            Node::NotEach(inner) => Some(Val::Array(
                inner
                    .eval(ctx)?
                    .into_elements()
                    .into_iter()
                    .map(|e| Val::Bool(!e.as_bool()))
                    .collect(),
            )),
            Node::Compare { .. }
            | Node::FieldCompare { .. }
            | Node::Not(_)
            | Node::And(_)
            | Node::Or(_)
            | Node::Xor(_) => Some(Val::Bool(self.eval_bool(ctx))),
        }
    }
}
