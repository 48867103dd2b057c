//! Named lists (`ip.src in $office_network`) supplied by the host program.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::ipset::IpSet;
use crate::types::Type;

/// The items of one named list. All items of a list have one type.
#[derive(Debug, Clone)]
pub enum List {
    /// IP addresses and networks.
    Ip(IpSet),
    /// Byte strings, matched exactly.
    Bytes(HashSet<Vec<u8>>),
    /// Integers.
    Int(HashSet<i64>),
}

impl List {
    /// The type a value on the left of `in $name` must have.
    pub fn item_type(&self) -> Type {
        match self {
            List::Ip(_) => Type::Ip,
            List::Bytes(_) => Type::Bytes,
            List::Int(_) => Type::Int,
        }
    }
}

/// The named lists an expression may refer to with `$name`.
///
/// ```
/// use rampart_rules::{IpSet, List, Lists};
/// let mut lists = Lists::new();
/// lists.insert("office_network", List::Ip(IpSet::from_iter(["192.0.2.0/24".parse().unwrap()])));
/// assert!(lists.get("office_network").is_some());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Lists {
    lists: HashMap<String, Arc<List>>,
}

impl Lists {
    /// No lists.
    pub fn new() -> Self {
        Lists::default()
    }

    /// Adds or replaces the list `name` (without the `$`).
    pub fn insert(&mut self, name: impl Into<String>, list: List) {
        self.lists.insert(name.into(), Arc::new(list));
    }

    /// The list called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Arc<List>> {
        self.lists.get(name)
    }
}
