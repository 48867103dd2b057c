//! The scheme: the fields an expression may read, each with a name and a type.

use std::collections::HashMap;
use std::fmt;

use crate::types::Type;

/// Identifies a field of a [`Scheme`]; the index of the field in declaration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(pub(crate) u32);

impl FieldId {
    /// The position of the field in its scheme (0-based, declaration order).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Why a field could not be added to a scheme. This is an API misuse by the
/// host program, never something a rule author can cause.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemeError {
    /// A field of that name is already declared.
    DuplicateField(String),
    /// A field name must be dot-separated parts of `[A-Za-z0-9_]`, starting with a letter or `_`.
    InvalidFieldName(String),
}

impl fmt::Display for SchemeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemeError::DuplicateField(n) => write!(f, "field `{n}` is declared twice"),
            SchemeError::InvalidFieldName(n) => write!(f, "`{n}` is not a valid field name"),
        }
    }
}

impl std::error::Error for SchemeError {}

/// The set of fields (name → type) that expressions are checked against.
///
/// ```
/// use rampart_rules::{Scheme, Type};
/// let mut scheme = Scheme::new();
/// let host = scheme.add_field("http.host", Type::Bytes).unwrap();
/// assert_eq!(scheme.field("http.host"), Some((host, &Type::Bytes)));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Scheme {
    fields: Vec<(String, Type)>,
    by_name: HashMap<String, FieldId>,
}

impl Scheme {
    /// A scheme with no fields.
    pub fn new() -> Self {
        Scheme::default()
    }

    /// Declares a field.
    pub fn add_field(&mut self, name: &str, ty: Type) -> Result<FieldId, SchemeError> {
        let valid = !name.is_empty()
            && name.split('.').all(|part| {
                let mut chars = part.chars();
                chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if !valid {
            return Err(SchemeError::InvalidFieldName(name.to_owned()));
        }
        if self.by_name.contains_key(name) {
            return Err(SchemeError::DuplicateField(name.to_owned()));
        }
        let id = FieldId(self.fields.len() as u32);
        self.fields.push((name.to_owned(), ty));
        self.by_name.insert(name.to_owned(), id);
        Ok(id)
    }

    /// Looks a field up by name.
    pub fn field(&self, name: &str) -> Option<(FieldId, &Type)> {
        let id = *self.by_name.get(name)?;
        Some((id, &self.fields[id.index()].1))
    }

    /// The name of a field.
    pub fn field_name(&self, id: FieldId) -> Option<&str> {
        self.fields.get(id.index()).map(|(n, _)| n.as_str())
    }

    /// The type of a field.
    pub fn field_type(&self, id: FieldId) -> Option<&Type> {
        self.fields.get(id.index()).map(|(_, t)| t)
    }

    /// All fields in declaration order.
    pub fn fields(&self) -> impl Iterator<Item = (FieldId, &str, &Type)> {
        self.fields
            .iter()
            .enumerate()
            .map(|(i, (n, t))| (FieldId(i as u32), n.as_str(), t))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether no field is declared.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Limits that bound the work and memory any expression can cause. Each
/// compile-time limit has its own [`ErrorKind`](crate::ErrorKind) when
/// exceeded; the run-time one, [`ParserSettings::max_value_length`], truncates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserSettings {
    /// Longest accepted expression, in bytes. Default 16,384 (Cloudflare
    /// accepts 4,096 characters, so every Cloudflare rule fits).
    /// Exceeding it gives [`ErrorKind::ExpressionTooLong`](crate::ErrorKind::ExpressionTooLong).
    pub max_expression_length: usize,
    /// Deepest nesting of parentheses, `not`, function calls and indexes.
    /// Default 64. Exceeding it gives [`ErrorKind::NestingTooDeep`](crate::ErrorKind::NestingTooDeep).
    pub max_nesting_depth: usize,
    /// Largest compiled size of one regular expression (or wildcard pattern
    /// compiled to one), in bytes. Default 1 MiB. Exceeding it gives
    /// [`ErrorKind::RegexTooBig`](crate::ErrorKind::RegexTooBig).
    pub max_regex_size: usize,
    /// Most `*` in one wildcard pattern. Default 32. Exceeding it gives
    /// [`ErrorKind::TooManyWildcardStars`](crate::ErrorKind::TooManyWildcardStars).
    pub max_wildcard_stars: usize,
    /// Most items in one literal set `{...}`. Default 10,000. Exceeding it gives
    /// [`ErrorKind::TooManySetItems`](crate::ErrorKind::TooManySetItems).
    pub max_set_items: usize,
    /// Longest byte string that `concat`, `join`, `regex_replace` and
    /// `wildcard_replace` build at run time (for `concat` of arrays, the
    /// bytes of all elements); a longer result is truncated to this length.
    /// This bounds the memory of nested calls on large inputs such as
    /// `join(split(http.request.body.raw, ",", 128), http.request.body.raw)`.
    /// Default 4 MiB. A run-time limit, so not an error: rules never fail
    /// at run time.
    pub max_value_length: usize,
}

impl ParserSettings {
    /// Default for [`ParserSettings::max_expression_length`].
    pub const DEFAULT_MAX_EXPRESSION_LENGTH: usize = 16 * 1024;
    /// Default for [`ParserSettings::max_nesting_depth`].
    pub const DEFAULT_MAX_NESTING_DEPTH: usize = 64;
    /// Default for [`ParserSettings::max_regex_size`].
    pub const DEFAULT_MAX_REGEX_SIZE: usize = 1024 * 1024;
    /// Default for [`ParserSettings::max_wildcard_stars`].
    pub const DEFAULT_MAX_WILDCARD_STARS: usize = 32;
    /// Default for [`ParserSettings::max_set_items`].
    pub const DEFAULT_MAX_SET_ITEMS: usize = 10_000;
    /// Default for [`ParserSettings::max_value_length`].
    pub const DEFAULT_MAX_VALUE_LENGTH: usize = 4 * 1024 * 1024;
}

impl Default for ParserSettings {
    fn default() -> Self {
        ParserSettings {
            max_expression_length: Self::DEFAULT_MAX_EXPRESSION_LENGTH,
            max_nesting_depth: Self::DEFAULT_MAX_NESTING_DEPTH,
            max_regex_size: Self::DEFAULT_MAX_REGEX_SIZE,
            max_wildcard_stars: Self::DEFAULT_MAX_WILDCARD_STARS,
            max_set_items: Self::DEFAULT_MAX_SET_ITEMS,
            max_value_length: Self::DEFAULT_MAX_VALUE_LENGTH,
        }
    }
}
