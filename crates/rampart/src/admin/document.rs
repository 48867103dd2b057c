//! The configuration file as the management API edits it: read with `toml_edit` (comments and
//! layout kept), changed, checked by the same loader as at start-up, written atomically
//! (temporary file, fsync, rename), put in force through the reload path, and recorded in the
//! audit log.

use std::io::Write as _;
use std::path::PathBuf;

use serde_json::{Map, Value, json};
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table};

use crate::config::save::SaveError;
use crate::config::{self, ConfigError};
use crate::runtime::{Announcement, Runtime};

/// Why a change was not made.
#[derive(Debug)]
pub enum EditError {
    /// Running the embedded default: there is no file to keep changes in.
    NoFile,
    /// The file could not be read, parsed or written.
    Io(String),
    /// No `[[zone]]` of that name.
    NoZone,
    /// The changed configuration is not valid: its errors, and the key each names.
    Invalid(Vec<ConfigError>),
}

/// The configuration file of the running proxy, read for an edit.
pub struct Document {
    path: PathBuf,
    doc: DocumentMut,
}

impl Document {
    /// Reads the file the running configuration came from.
    pub fn open(rt: &Runtime) -> Result<Document, EditError> {
        let path = rt
            .generation()
            .config
            .source
            .clone()
            .ok_or(EditError::NoFile)?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| EditError::Io(format!("cannot read {}: {e}", path.display())))?;
        let doc = text
            .parse::<DocumentMut>()
            .map_err(|e| EditError::Io(format!("cannot parse {}: {e}", path.display())))?;
        Ok(Document { path, doc })
    }

    /// The `[[zone]]` named `zone`.
    pub fn zone_mut(&mut self, zone: &str) -> Result<&mut Table, EditError> {
        self.doc
            .get_mut("zone")
            .and_then(Item::as_array_of_tables_mut)
            .and_then(|zones| {
                zones
                    .iter_mut()
                    .find(|t| t.get("name").and_then(Item::as_str) == Some(zone))
            })
            .ok_or(EditError::NoZone)
    }

    /// The array of tables `key` of the zone (created empty when absent).
    pub fn zone_list<'d>(
        &'d mut self,
        zone: &str,
        key: &str,
    ) -> Result<&'d mut ArrayOfTables, EditError> {
        let table = self.zone_mut(zone)?;
        if !table.contains_key(key) {
            table.insert(key, Item::ArrayOfTables(ArrayOfTables::new()));
        }
        let list = table
            .get_mut(key)
            .and_then(Item::as_array_of_tables_mut)
            .ok_or_else(|| {
                EditError::Io(format!("`{key}` of the zone is not an array of tables"))
            })?;
        Ok(list)
    }

    /// The top-level array of tables `key` (`[[list]]`), created empty when absent.
    pub fn root_list(&mut self, key: &str) -> Result<&mut ArrayOfTables, EditError> {
        if !self.doc.contains_key(key) {
            self.doc
                .insert(key, Item::ArrayOfTables(ArrayOfTables::new()));
        }
        self.doc
            .get_mut(key)
            .and_then(Item::as_array_of_tables_mut)
            .ok_or_else(|| EditError::Io(format!("`{key}` is not an array of tables")))
    }

    /// Checks the changed text with the configuration loader, writes it in place of the file,
    /// and puts it in force for new requests.
    pub fn commit(self, rt: &Runtime) -> Result<(), EditError> {
        let text = self.doc.to_string();
        let loaded = config::save::replace_file(&self.path, &text).map_err(|e| match e {
            SaveError::Invalid(errors) => EditError::Invalid(errors),
            SaveError::Io(message) => EditError::Io(message),
        })?;
        for w in &loaded.warnings {
            tracing::warn!("management API: {w}");
        }
        rt.reload(loaded.config);
        rt.announce(Announcement::Config(text));
        Ok(())
    }
}

/// A TOML table as JSON (strings, integers, floats, booleans, arrays and tables).
pub fn table_json(table: &Table) -> Value {
    let mut out = Map::new();
    for (k, item) in table.iter() {
        if let Some(v) = item_json(item) {
            out.insert(k.to_string(), v);
        }
    }
    Value::Object(out)
}

fn item_json(item: &Item) -> Option<Value> {
    match item {
        Item::Value(v) => Some(value_json(v)),
        Item::Table(t) => Some(table_json(t)),
        Item::ArrayOfTables(a) => Some(Value::Array(a.iter().map(table_json).collect())),
        Item::None => None,
    }
}

fn value_json(v: &toml_edit::Value) -> Value {
    use toml_edit::Value as V;
    match v {
        V::String(s) => json!(s.value()),
        V::Integer(i) => json!(i.value()),
        V::Float(f) => json!(f.value()),
        V::Boolean(b) => json!(b.value()),
        V::Datetime(d) => json!(d.value().to_string()),
        V::Array(a) => Value::Array(a.iter().map(value_json).collect()),
        V::InlineTable(t) => {
            let mut out = Map::new();
            for (k, v) in t.iter() {
                out.insert(k.to_string(), value_json(v));
            }
            Value::Object(out)
        }
    }
}

/// A JSON object as a TOML table, for `[[zone.…]]`; `Err` names the first value TOML cannot
/// hold (null), as a JSON pointer.
/// The keys a person reads first come first (`id`, `description`, `expression`, `action`),
/// the others after them in name order.
pub fn json_table(object: &Map<String, Value>) -> Result<Table, String> {
    const FIRST: [&str; 4] = ["id", "description", "expression", "action"];
    let mut table = Table::new();
    let first = FIRST.iter().filter_map(|k| object.get_key_value(*k));
    let rest = object.iter().filter(|(k, _)| !FIRST.contains(&k.as_str()));
    for (k, v) in first.chain(rest) {
        table.insert(k, Item::Value(json_value(v, &format!("/{k}"))?));
    }
    Ok(table)
}

fn json_value(v: &Value, pointer: &str) -> Result<toml_edit::Value, String> {
    Ok(match v {
        Value::Null => return Err(pointer.to_string()),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(0.0).into(),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => {
            let mut a = Array::new();
            for (i, item) in items.iter().enumerate() {
                a.push(json_value(item, &format!("{pointer}/{i}"))?);
            }
            toml_edit::Value::Array(a)
        }
        Value::Object(map) => {
            let mut t = InlineTable::new();
            for (k, item) in map {
                t.insert(k, json_value(item, &format!("{pointer}/{k}"))?);
            }
            toml_edit::Value::InlineTable(t)
        }
    })
}

/// One line of the audit log: who changed what, before and after.
pub fn audit(rt: &Runtime, who: &str, what: &str, zone: &str, before: &Value, after: &Value) {
    let generation = rt.generation();
    let Some(path) = generation.config.server.audit_log.as_ref() else {
        return;
    };
    let line = json!({
        "time": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "who": who,
        "what": what,
        "zone": zone,
        "before": before,
        "after": after,
    });
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = written {
        // The change is made and kept in the file; the error log says the record is missing.
        tracing::error!(
            "management API: cannot write the audit log {}: {e}: {line}",
            path.display()
        );
    }
}
