//! The types of the language and the values the host program supplies.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// The type of a field, a literal or the result of a function.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    /// `true` or `false`.
    Bool,
    /// A signed 64-bit integer.
    Int,
    /// A byte string. Strings in the language are byte strings.
    Bytes,
    /// An IPv4 or IPv6 address.
    Ip,
    /// An ordered list of values of one type.
    Array(Box<Type>),
    /// A map from byte-string keys to values of one type.
    Map(Box<Type>),
}

impl Type {
    /// `Array<T>`.
    pub fn array(inner: Type) -> Type {
        Type::Array(Box::new(inner))
    }

    /// `Map<T>`.
    pub fn map(inner: Type) -> Type {
        Type::Map(Box::new(inner))
    }

    /// The value a field of this type has when the request does not supply it:
    /// `false`, `0`, `""`, `0.0.0.0`, an empty array or an empty map.
    pub fn empty_value(&self) -> Value<'static> {
        match self {
            Type::Bool => Value::Bool(false),
            Type::Int => Value::Int(0),
            Type::Bytes => Value::Bytes(Cow::Borrowed(b"")),
            Type::Ip => Value::Ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            Type::Array(_) => Value::Array(Vec::new()),
            Type::Map(_) => Value::Map(BTreeMap::new()),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("Bool"),
            Type::Int => f.write_str("Int"),
            Type::Bytes => f.write_str("Bytes"),
            Type::Ip => f.write_str("Ip"),
            Type::Array(t) => write!(f, "Array<{t}>"),
            Type::Map(t) => write!(f, "Map<{t}>"),
        }
    }
}

/// The keys and values of a `Map` value.
pub type MapValue<'a> = BTreeMap<Cow<'a, [u8]>, Value<'a>>;

/// A value of a field, supplied by the host through a
/// [`FieldSource`](crate::FieldSource). Byte strings may borrow from the
/// host's request so that filling a field does not have to copy it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// A Bool.
    Bool(bool),
    /// An Int.
    Int(i64),
    /// Bytes, borrowed or owned.
    Bytes(Cow<'a, [u8]>),
    /// An IP address.
    Ip(IpAddr),
    /// An array; all elements must have the element type of the field.
    Array(Vec<Value<'a>>),
    /// A map; all values must have the value type of the field.
    Map(MapValue<'a>),
}

impl<'a> Value<'a> {
    /// Whether this value's outer shape fits `ty` (elements are checked when read).
    pub(crate) fn fits(&self, ty: &Type) -> bool {
        matches!(
            (self, ty),
            (Value::Bool(_), Type::Bool)
                | (Value::Int(_), Type::Int)
                | (Value::Bytes(_), Type::Bytes)
                | (Value::Ip(_), Type::Ip)
                | (Value::Array(_), Type::Array(_))
                | (Value::Map(_), Type::Map(_))
        )
    }
}

impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Bytes(Cow::Borrowed(v.as_bytes()))
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Value::Bytes(Cow::Borrowed(v))
    }
}

impl From<String> for Value<'_> {
    fn from(v: String) -> Self {
        Value::Bytes(Cow::Owned(v.into_bytes()))
    }
}

impl From<Vec<u8>> for Value<'_> {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(Cow::Owned(v))
    }
}

impl From<IpAddr> for Value<'_> {
    fn from(v: IpAddr) -> Self {
        Value::Ip(v)
    }
}
