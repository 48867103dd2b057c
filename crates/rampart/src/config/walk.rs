//! A reader over a spanned TOML tree that collects every problem instead of stopping at the first.
//!
//! serde's derive stops at the first error and cannot suggest the key the user meant, so the
//! configuration is read by hand: each table lists the keys it knows, and every unknown key,
//! wrong type or bad value becomes a [`ConfigError`] with file, line, column and dotted key.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file it is in (or `<embedded default>`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Dotted key path, e.g. `zone[0].origin_connect_timeout`.
    pub key: String,
    /// What is wrong, and how to fix it when we know.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0: about the file as a whole (it cannot be read), not a place in it.
        if self.line == 0 && self.key.is_empty() {
            return write!(f, "{}: {}", self.file, self.message);
        }
        if self.key.is_empty() {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        } else {
            write!(
                f,
                "{}:{}:{}: `{}`: {}",
                self.file, self.line, self.column, self.key, self.message
            )
        }
    }
}

/// A spanned TOML value.
pub type Value<'i> = Spanned<DeValue<'i>>;

/// Collects problems while the configuration is read.
pub struct Walker<'s> {
    file: String,
    src: &'s str,
    /// Every problem found so far, in the order found.
    pub errors: Vec<ConfigError>,
    /// Non-fatal remarks (printed by `rampart check` and at start-up).
    pub warnings: Vec<ConfigError>,
}

impl<'s> Walker<'s> {
    /// A walker over `src`, read from `file`.
    pub fn new(file: &str, src: &'s str) -> Self {
        Walker {
            file: file.to_string(),
            src,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn located(&self, span: &Range<usize>, key: &str, message: String) -> ConfigError {
        let start = span.start.min(self.src.len());
        let before = &self.src[..start];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = self.src[line_start..start].chars().count() + 1;
        ConfigError {
            file: self.file.clone(),
            line,
            column,
            key: key.to_string(),
            message,
        }
    }

    /// Records an error at `span`.
    pub fn error(&mut self, span: &Range<usize>, key: &str, message: impl Into<String>) {
        let e = self.located(span, key, message.into());
        self.errors.push(e);
    }

    /// Records a warning at `span`.
    pub fn warn(&mut self, span: &Range<usize>, key: &str, message: impl Into<String>) {
        let e = self.located(span, key, message.into());
        self.warnings.push(e);
    }

    /// Checks that `value` is a table whose keys are all in `known`; reports unknown keys
    /// with the nearest known key suggested.
    pub fn table<'t, 'i>(
        &mut self,
        path: &str,
        value: &'t Value<'i>,
        known: &[&str],
    ) -> Option<Table<'t, 'i>> {
        let Some(map) = value.get_ref().as_table() else {
            self.error(
                &value.span(),
                path,
                format!("expected a table, found {}", value.get_ref().type_str()),
            );
            return None;
        };
        Some(self.known_keys(path, map, value.span(), known))
    }

    /// A table whose keys are names of the user's choosing (field names, say), not keys
    /// of rampart's.
    pub fn free_table<'t, 'i>(
        path: &str,
        map: &'t DeTable<'i>,
        span: Range<usize>,
    ) -> Table<'t, 'i> {
        Table {
            path: path.to_string(),
            map,
            span,
        }
    }

    /// Like [`Walker::table`] for an already unwrapped table.
    pub fn known_keys<'t, 'i>(
        &mut self,
        path: &str,
        map: &'t DeTable<'i>,
        span: Range<usize>,
        known: &[&str],
    ) -> Table<'t, 'i> {
        for (k, _) in map.iter() {
            let name: &str = k.get_ref();
            if !known.contains(&name) {
                let key = join(path, name);
                let message = match nearest(name, known) {
                    Some(s) => format!("unknown key `{name}`; did you mean `{s}`?"),
                    None => format!(
                        "unknown key `{name}`; known keys here: {}",
                        known.join(", ")
                    ),
                };
                self.error(&k.span(), &key, message);
            }
        }
        Table {
            path: path.to_string(),
            map,
            span,
        }
    }

    /// A string value.
    pub fn string(&mut self, t: &Table<'_, '_>, key: &str) -> Option<(String, Range<usize>)> {
        let v = t.get(key)?;
        match v.get_ref().as_str() {
            Some(s) => Some((s.to_string(), v.span())),
            None => {
                self.type_error(t, key, v, "a string");
                None
            }
        }
    }

    /// An integer value in `range`.
    pub fn integer(
        &mut self,
        t: &Table<'_, '_>,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<(i64, Range<usize>)> {
        let v = t.get(key)?;
        let Some(int) = v.get_ref().as_integer() else {
            self.type_error(t, key, v, "an integer");
            return None;
        };
        match i64::from_str_radix(&int.as_str().replace('_', ""), int.radix()) {
            Ok(n) if range.contains(&n) => Some((n, v.span())),
            _ => {
                let (lo, hi) = (range.start(), range.end());
                self.error(
                    &v.span(),
                    &t.key(key),
                    format!("must be an integer from {lo} to {hi}"),
                );
                None
            }
        }
    }

    /// A string that must be one of `choices`' names: the value it names, or an error
    /// listing them.
    pub fn choice<T: Copy>(
        &mut self,
        t: &Table<'_, '_>,
        key: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let (s, span) = self.string(t, key)?;
        match choices.iter().find(|(name, _)| *name == s) {
            Some((_, v)) => Some(*v),
            None => {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                self.error(
                    &span,
                    &t.key(key),
                    format!("unknown value `{s}`; one of: {}", names.join(", ")),
                );
                None
            }
        }
    }

    /// A boolean value.
    pub fn boolean(&mut self, t: &Table<'_, '_>, key: &str) -> Option<bool> {
        let v = t.get(key)?;
        match v.get_ref().as_bool() {
            Some(b) => Some(b),
            None => {
                self.type_error(t, key, v, "true or false");
                None
            }
        }
    }

    /// A duration written as a string ("15s", "250ms", "1m 30s") or an integer of seconds,
    /// at most `max`.
    pub fn duration(&mut self, t: &Table<'_, '_>, key: &str, max: Duration) -> Option<Duration> {
        if t.get(key)?.get_ref().as_integer().is_some() {
            let top = i64::try_from(max.as_secs()).unwrap_or(i64::MAX);
            let (n, span) = self.integer(t, key, 0..=top)?;
            if n == 0 {
                self.error(&span, &t.key(key), "must be longer than zero");
                return None;
            }
            return Some(Duration::from_secs(n as u64));
        }
        let (s, span) = self.string(t, key)?;
        match humantime::parse_duration(&s) {
            Ok(d) if d.is_zero() => {
                self.error(&span, &t.key(key), "must be longer than zero");
                None
            }
            Ok(d) if d > max => {
                self.error(
                    &span,
                    &t.key(key),
                    format!("must be at most {}", humantime::format_duration(max)),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    &span,
                    &t.key(key),
                    format!("`{s}` is not a duration ({e}); write e.g. \"15s\" or \"250ms\""),
                );
                None
            }
        }
    }

    /// A size: an integer of bytes, or a string with a unit, `"512KB"`, `"256MB"`, `"10GB"`
    /// (binary units: 1 KB = 1,024 bytes, as nginx counts; `KiB` and friends too), at most
    /// `max` bytes.
    pub fn size(&mut self, t: &Table<'_, '_>, key: &str, max: u64) -> Option<u64> {
        let v = t.get(key)?;
        let parsed = match (v.get_ref().as_integer(), v.get_ref().as_str()) {
            (Some(i), _) => i.as_str().replace('_', "").parse::<u64>().ok(),
            (None, Some(s)) => parse_size(s),
            _ => {
                self.type_error(t, key, v, "a size such as \"256MB\"");
                return None;
            }
        };
        match parsed {
            Some(n) if n <= max => Some(n),
            Some(_) => {
                self.error(
                    &v.span(),
                    &t.key(key),
                    format!("must be at most {max} bytes"),
                );
                None
            }
            None => {
                self.error(
                    &v.span(),
                    &t.key(key),
                    "not a size: write bytes as an integer, or e.g. \"512KB\", \"256MB\", \"10GB\"",
                );
                None
            }
        }
    }

    /// An array of strings, each with its span.
    pub fn strings(&mut self, t: &Table<'_, '_>, key: &str) -> Option<Vec<(String, Range<usize>)>> {
        let v = t.get(key)?;
        let Some(items) = v.get_ref().as_array() else {
            self.type_error(t, key, v, "an array of strings");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item.get_ref().as_str() {
                Some(s) => out.push((s.to_string(), item.span())),
                None => self.error(
                    &item.span(),
                    &format!("{}[{i}]", t.key(key)),
                    "expected a string",
                ),
            }
        }
        Some(out)
    }

    /// An array of strings that must not be empty: an empty one is reported with `empty`
    /// (and returned, so the caller can go on).
    pub fn nonempty_strings(
        &mut self,
        t: &Table<'_, '_>,
        key: &str,
        empty: &str,
    ) -> Option<Vec<(String, Range<usize>)>> {
        let list = self.strings(t, key)?;
        if list.is_empty() {
            self.error(&t.span_of(key), &t.key(key), empty);
        }
        Some(list)
    }

    /// An array of tables (`[[zone]]`), each checked against `known`.
    pub fn tables<'t, 'i>(
        &mut self,
        t: &Table<'t, 'i>,
        key: &str,
        known: &[&str],
    ) -> Vec<(String, Table<'t, 'i>)> {
        let Some(v) = t.get(key) else {
            return Vec::new();
        };
        let Some(items) = v.get_ref().as_array() else {
            self.type_error(t, key, v, "an array of tables");
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", t.key(key));
            if let Some(table) = self.table(&path, item, known) {
                out.push((path, table));
            }
        }
        out
    }

    /// Reports that `key` is required but absent from `t`.
    pub fn missing(&mut self, t: &Table<'_, '_>, key: &str) {
        let span = t.span.clone();
        self.error(&span, &t.key(key), format!("`{key}` is required here"));
    }

    fn type_error(&mut self, t: &Table<'_, '_>, key: &str, v: &Value<'_>, want: &str) {
        let msg = format!("expected {want}, found {}", v.get_ref().type_str());
        self.error(&v.span(), &t.key(key), msg);
    }
}

/// A table being read, with its dotted path.
pub struct Table<'t, 'i> {
    path: String,
    map: &'t DeTable<'i>,
    /// The span of the whole table, for "missing key" errors.
    pub span: Range<usize>,
}

impl<'t, 'i> Table<'t, 'i> {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'t Value<'i>> {
        self.map
            .iter()
            .find(|(k, _)| {
                let name: &str = k.get_ref();
                name == key
            })
            .map(|(_, v)| v)
    }

    /// The dotted path of `key` in this table.
    pub fn key(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The span of `key`'s value, or of the table when absent.
    pub fn span_of(&self, key: &str) -> Range<usize> {
        self.get(key).map_or(self.span.clone(), |v| v.span())
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The known name closest to `name` by edit distance, when it is close enough to be a typo.
pub fn nearest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over bytes.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// `"256MB"` → bytes (binary units; `B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`, `TB`/`TiB`,
/// case-insensitive, a space allowed before the unit).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_suggests_typos_but_not_unrelated_words() {
        let known = ["listen", "access_log", "keepalive_timeout"];
        assert_eq!(nearest("lisen", &known), Some("listen"));
        assert_eq!(
            nearest("keepalive_timout", &known),
            Some("keepalive_timeout")
        );
        assert_eq!(nearest("banana", &known), None);
    }

    #[test]
    fn sizes_have_binary_units() {
        assert_eq!(super::parse_size("256MB"), Some(256 << 20));
        assert_eq!(super::parse_size("10 GiB"), Some(10 << 30));
        assert_eq!(super::parse_size("512kb"), Some(512 << 10));
        assert_eq!(super::parse_size("4096"), Some(4096));
        assert_eq!(super::parse_size("1.5GB"), None);
        assert_eq!(super::parse_size("12 parsecs"), None);
        assert_eq!(super::parse_size("99999999999999999999TB"), None);
    }
}
