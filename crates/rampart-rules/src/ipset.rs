//! [`IpSet`]: a set of IPv4 and IPv6 prefixes with fast membership tests.
//!
//! Used for CIDR literal sets (`ip.src in {10.0.0.0/8 2001:db8::/32}`), for
//! IP lists supplied by the host, and by the server for IP access rules.
//!
//! The set keeps one hash table per prefix length that occurs. A lookup masks
//! the address once per distinct prefix length and probes that table, so it
//! costs at most 33 (IPv4) or 129 (IPv6) probes and, in practice, a handful:
//! real sets use few distinct lengths. Memory is one 16-byte key per prefix,
//! so millions of entries fit in tens of megabytes, and inserts are O(1).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// A small multiply-xorshift hasher for integer keys. Keys are masked
/// network addresses, which the host does not choose adversarially in bulk.
#[derive(Default, Clone, Copy)]
pub(crate) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u128(&mut self, i: u128) {
        let lo = i as u64;
        let hi = (i >> 64) as u64;
        self.0 = (self.0 ^ lo).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ hi.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0 ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IntSet = HashSet<u128, BuildHasherDefault<IntHasher>>;

/// Prefixes of one address family, in tables by prefix length.
#[derive(Clone, Debug, Default)]
struct PrefixTable {
    /// `(prefix length, networks of that length)`, longest first.
    tables: Vec<(u8, IntSet)>,
}

impl PrefixTable {
    fn insert(&mut self, network: u128, len: u8, width: u8) -> bool {
        let network = network & mask(len, width);
        let pos = match self.tables.binary_search_by(|(l, _)| len.cmp(l)) {
            Ok(p) => p,
            Err(p) => {
                self.tables.insert(p, (len, IntSet::default()));
                p
            }
        };
        self.tables[pos].1.insert(network)
    }

    fn contains(&self, addr: u128, width: u8) -> bool {
        self.tables
            .iter()
            .any(|(len, set)| set.contains(&(addr & mask(*len, width))))
    }

    fn len(&self) -> usize {
        self.tables.iter().map(|(_, s)| s.len()).sum()
    }
}

/// The network mask of a `len`-bit prefix in a `width`-bit address, as u128.
fn mask(len: u8, width: u8) -> u128 {
    let len = len.min(width);
    if len == 0 {
        return 0;
    }
    let full: u128 = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    if len == width {
        return full;
    }
    full & !(full >> len)
}

/// A set of IPv4 and IPv6 networks (CIDR prefixes) answering "is this
/// address inside any of them?".
///
/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is also looked up as the
/// IPv4 address it maps.
///
/// ```
/// use rampart_rules::IpSet;
/// let mut set = IpSet::new();
/// set.insert("10.0.0.0/8".parse().unwrap());
/// set.insert("2001:db8::/32".parse().unwrap());
/// set.insert_addr("192.0.2.7".parse().unwrap());
/// assert!(set.contains("10.1.2.3".parse().unwrap()));
/// assert!(set.contains("2001:db8::1".parse().unwrap()));
/// assert!(set.contains("::ffff:10.9.9.9".parse().unwrap()));
/// assert!(!set.contains("192.0.2.8".parse().unwrap()));
/// ```
#[derive(Clone, Debug, Default)]
pub struct IpSet {
    v4: PrefixTable,
    v6: PrefixTable,
}

impl IpSet {
    /// An empty set.
    pub fn new() -> Self {
        IpSet::default()
    }

    /// Adds a network. Host bits are ignored (`10.1.2.3/8` adds `10.0.0.0/8`).
    /// Returns whether the network was not already present.
    pub fn insert(&mut self, net: IpNet) -> bool {
        match net {
            IpNet::V4(n) => self
                .v4
                .insert(u128::from(u32::from(n.addr())), n.prefix_len(), 32),
            IpNet::V6(n) => self.v6.insert(u128::from(n.addr()), n.prefix_len(), 128),
        }
    }

    pub(crate) fn insert_prefix(&mut self, p: Prefix) -> bool {
        if p.v6 {
            self.v6.insert(p.net, p.len, 128)
        } else {
            self.v4.insert(p.net, p.len, 32)
        }
    }

    /// Adds a single address (a /32 or /128).
    pub fn insert_addr(&mut self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.v4.insert(u128::from(u32::from(a)), 32, 32),
            IpAddr::V6(a) => self.v6.insert(u128::from(a), 128, 128),
        }
    }

    /// Adds every address from `start` to `end` inclusive, as the fewest
    /// covering prefixes. Returns `false` (adding nothing) if the two
    /// addresses are of different families or `start > end`.
    pub fn insert_range(&mut self, start: IpAddr, end: IpAddr) -> bool {
        match (start, end) {
            (IpAddr::V4(s), IpAddr::V4(e)) if s <= e => {
                for (net, len) in
                    range_prefixes(u128::from(u32::from(s)), u128::from(u32::from(e)), 32)
                {
                    self.v4.insert(net, len, 32);
                }
                true
            }
            (IpAddr::V6(s), IpAddr::V6(e)) if s <= e => {
                for (net, len) in range_prefixes(u128::from(s), u128::from(e), 128) {
                    self.v6.insert(net, len, 128);
                }
                true
            }
            _ => false,
        }
    }

    /// Whether `addr` is inside any network of the set.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.contains_v4(a),
            IpAddr::V6(a) => {
                self.v6.contains(u128::from(a), 128)
                    || a.to_ipv4_mapped().is_some_and(|v4| self.contains_v4(v4))
            }
        }
    }

    fn contains_v4(&self, a: Ipv4Addr) -> bool {
        self.v4.contains(u128::from(u32::from(a)), 32)
    }

    /// Number of distinct prefixes stored.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether the set has no prefix at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromIterator<IpNet> for IpSet {
    fn from_iter<T: IntoIterator<Item = IpNet>>(iter: T) -> Self {
        let mut set = IpSet::new();
        for net in iter {
            set.insert(net);
        }
        set
    }
}

/// A network in integer form: family, masked network bits, prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Prefix {
    pub v6: bool,
    pub net: u128,
    pub len: u8,
}

/// An address as `(is IPv6, bits)`.
pub(crate) fn ip_bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

impl Prefix {
    fn width(v6: bool) -> u8 {
        if v6 { 128 } else { 32 }
    }

    /// The network of `ip/len` (host bits cleared).
    pub(crate) fn new(ip: IpAddr, len: u8) -> Prefix {
        let (v6, bits) = ip_bits(ip);
        let len = len.min(Self::width(v6));
        Prefix {
            v6,
            net: bits & mask(len, Self::width(v6)),
            len,
        }
    }

    /// The fewest prefixes covering `start..=end` (same family, `start <= end`).
    pub(crate) fn range(start: IpAddr, end: IpAddr) -> Vec<Prefix> {
        let ((v6, s), (v6e, e)) = (ip_bits(start), ip_bits(end));
        if v6 != v6e || s > e {
            return Vec::new();
        }
        range_prefixes(s, e, Self::width(v6))
            .into_iter()
            .map(|(net, len)| Prefix { v6, net, len })
            .collect()
    }

    pub(crate) fn mask(&self) -> u128 {
        mask(self.len, Self::width(self.v6))
    }
}

/// The fewest prefixes covering `start..=end` in a `width`-bit space.
fn range_prefixes(mut start: u128, end: u128, width: u8) -> Vec<(u128, u8)> {
    let mut out = Vec::new();
    loop {
        // Largest aligned block starting at `start` that does not pass `end`.
        let mut bits = if start == 0 {
            width
        } else {
            (start.trailing_zeros() as u8).min(width)
        };
        loop {
            let last = block_last(start, bits);
            if last <= end {
                break;
            }
            bits -= 1;
        }
        out.push((start, width - bits));
        let last = block_last(start, bits);
        if last >= end {
            break;
        }
        start = last + 1;
    }
    out
}

fn block_last(start: u128, bits: u8) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        start | ((1u128 << bits) - 1)
    }
}

/// The network part of `addr` for a prefix of `len` bits.
pub(crate) fn network_of(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(
            (u128::from(u32::from(a)) & mask(len, 32)) as u32,
        )),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask(len, 128))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_addresses_match_by_family() {
        let mut s = IpSet::new();
        s.insert("10.0.0.0/8".parse().unwrap());
        s.insert("2001:db8::/32".parse().unwrap());
        assert!(s.contains("10.255.0.1".parse().unwrap()));
        assert!(!s.contains("11.0.0.1".parse().unwrap()));
        assert!(s.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!s.contains("2001:db9::1".parse().unwrap()));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn full_length_prefixes_are_single_addresses() {
        let mut s = IpSet::new();
        s.insert_addr("2001:db8::2".parse().unwrap());
        s.insert("192.0.2.1/32".parse().unwrap());
        s.insert("2001:db8::5/128".parse().unwrap());
        assert!(s.contains("2001:db8::2".parse().unwrap()));
        assert!(s.contains("2001:db8::5".parse().unwrap()));
        assert!(!s.contains("2001:db8::3".parse().unwrap()));
        assert!(s.contains("192.0.2.1".parse().unwrap()));
        assert!(!s.contains("192.0.2.2".parse().unwrap()));
    }

    #[test]
    fn zero_length_prefix_matches_everything_of_its_family() {
        let mut s = IpSet::new();
        s.insert("0.0.0.0/0".parse().unwrap());
        assert!(s.contains("1.2.3.4".parse().unwrap()));
        assert!(!s.contains("::1".parse().unwrap()));
        s.insert("::/0".parse().unwrap());
        assert!(s.contains("::1".parse().unwrap()));
    }

    #[test]
    fn range_is_covered_exactly() {
        let mut s = IpSet::new();
        assert!(s.insert_range(
            "198.51.100.3".parse().unwrap(),
            "198.51.100.7".parse().unwrap()
        ));
        for last in 0..=10u8 {
            let ip: IpAddr = format!("198.51.100.{last}").parse().unwrap();
            assert_eq!(s.contains(ip), (3..=7).contains(&last), "{ip}");
        }
        let mut all = IpSet::new();
        assert!(all.insert_range(
            "::".parse().unwrap(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap()
        ));
        assert_eq!(all.len(), 1);
        assert!(!all.insert_range("::2".parse().unwrap(), "::1".parse().unwrap()));
        assert!(!all.insert_range("::2".parse().unwrap(), "1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn a_million_entries_stay_fast_to_query() {
        let mut s = IpSet::new();
        for i in 0..1_000_000u32 {
            s.insert_addr(IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761))));
        }
        assert!(s.len() > 990_000);
        assert!(s.contains(IpAddr::V4(Ipv4Addr::from(5u32.wrapping_mul(2_654_435_761)))));
    }
}
