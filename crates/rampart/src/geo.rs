//! Country, continent and ASN of an IP, from MaxMind-format databases (`[geoip]`).

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{Reader, geoip2};

/// What the databases say about one IP. Empty fields when there is no database or no entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2 country code, uppercase ("US").
    pub country: Option<String>,
    /// Continent code ("NA", "EU", …).
    pub continent: Option<String>,
    /// Autonomous system number.
    pub asn: Option<u32>,
}

/// The opened databases.
#[derive(Default)]
pub struct GeoIp {
    country: Option<Reader<Vec<u8>>>,
    asn: Option<Reader<Vec<u8>>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("country", &self.country.is_some())
            .field("asn", &self.asn.is_some())
            .finish()
    }
}

impl GeoIp {
    /// Opens the databases that are configured. The error names the file.
    pub fn open(country_db: Option<&Path>, asn_db: Option<&Path>) -> Result<GeoIp, String> {
        let open = |p: &Path, kind: &str| {
            let reader = Reader::open_readfile(p)
                .map_err(|e| format!("cannot open {}: {e}", p.display()))?;
            let db_type = reader.metadata().database_type.to_ascii_lowercase();
            if !db_type.contains(kind) {
                return Err(format!(
                    "{} is a `{}` database, not a {kind} database",
                    p.display(),
                    reader.metadata().database_type
                ));
            }
            Ok(reader)
        };
        Ok(GeoIp {
            country: country_db.map(|p| open(p, "country")).transpose()?,
            asn: asn_db.map(|p| open(p, "asn")).transpose()?,
        })
    }

    /// Whether a country database is loaded.
    pub fn has_country(&self) -> bool {
        self.country.is_some()
    }

    /// Whether an ASN database is loaded.
    pub fn has_asn(&self) -> bool {
        self.asn.is_some()
    }

    /// [`GeoIp::lookup`] when a database is configured; empty otherwise (no work at all).
    pub fn lookup_if_configured(&self, ip: IpAddr) -> GeoInfo {
        if self.has_country() || self.has_asn() {
            self.lookup(ip)
        } else {
            GeoInfo::default()
        }
    }

    /// Looks `ip` up in every loaded database.
    pub fn lookup(&self, ip: IpAddr) -> GeoInfo {
        let mut info = GeoInfo::default();
        if let Some(r) = &self.country
            && let Ok(res) = r.lookup(ip)
            && let Ok(Some(c)) = res.decode::<geoip2::Country>()
        {
            info.country = c.country.iso_code.map(str::to_ascii_uppercase);
            info.continent = c.continent.code.map(str::to_string);
        }
        if let Some(r) = &self.asn
            && let Ok(res) = r.lookup(ip)
            && let Ok(Some(a)) = res.decode::<geoip2::Asn>()
        {
            info.asn = a.autonomous_system_number;
        }
        info
    }
}
