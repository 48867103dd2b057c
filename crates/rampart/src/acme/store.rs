//! ACME storage: the account per directory, and each zone's certificate and key, written
//! atomically (a temporary file, fsync, rename) so that a crash or a full disk never leaves
//! half a certificate behind.
//!
//! ```text
//! STORAGE/accounts/<hash of the directory URL>.json
//! STORAGE/certs/<zone>/fullchain.pem
//! STORAGE/certs/<zone>/privkey.pem      (mode 0600)
//! ```

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use instant_acme::AccountCredentials;

use crate::tls::ServerCert;

fn account_path(storage: &Path, directory: &str) -> PathBuf {
    let mut h = rustc_hash::FxHasher::default();
    directory.hash(&mut h);
    storage
        .join("accounts")
        .join(format!("{:016x}.json", h.finish()))
}

fn cert_dir(storage: &Path, zone: &str) -> PathBuf {
    let safe: String = zone
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    storage.join("certs").join(safe)
}

/// The stored account for `directory`, if there is one.
pub(super) fn load_account(
    storage: &Path,
    directory: &str,
) -> Result<Option<AccountCredentials>, String> {
    let path = account_path(storage, directory);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: not an ACME account: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Stores the account for `directory` (its key: readable by the owner only).
pub(super) fn save_account(
    storage: &Path,
    directory: &str,
    account: &AccountCredentials,
) -> Result<(), String> {
    let json = serde_json::to_vec_pretty(account).map_err(|e| e.to_string())?;
    write_atomically(&account_path(storage, directory), &json, true)
}

/// The stored certificate of `zone`, when there is one that covers `names` and is valid now.
pub(super) fn load_certificate(
    storage: &Path,
    zone: &str,
    names: &[String],
) -> Result<Option<ServerCert>, String> {
    let dir = cert_dir(storage, zone);
    let (chain_path, key_path) = (dir.join("fullchain.pem"), dir.join("privkey.pem"));
    let chain = match std::fs::read(&chain_path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", chain_path.display())),
    };
    let key =
        std::fs::read(&key_path).map_err(|e| format!("cannot read {}: {e}", key_path.display()))?;
    let covered = covered_names(&chain)
        .ok_or_else(|| format!("{}: not a PEM certificate", chain_path.display()))?;
    let missing: Vec<&String> = names.iter().filter(|n| !covered.contains(n)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} does not cover {} (the zone's names changed)",
            chain_path.display(),
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    ServerCert::from_pem(
        &chain,
        &key,
        &chain_path.display().to_string(),
        &key_path.display().to_string(),
    )
    .map(Some)
}

/// The DNS names of the first certificate of a PEM chain (lowercase).
fn covered_names(chain_pem: &[u8]) -> Option<Vec<String>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let first = CertificateDer::pem_slice_iter(chain_pem).next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(first.as_ref()).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    Some(
        san.value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
    )
}

/// Stores `zone`'s certificate chain and key.
pub(super) fn save_certificate(
    storage: &Path,
    zone: &str,
    chain: &str,
    key: &str,
) -> Result<(), String> {
    let dir = cert_dir(storage, zone);
    // The key first: a chain without its key is never left behind as the newer pair.
    write_atomically(&dir.join("privkey.pem"), key.as_bytes(), true)?;
    write_atomically(&dir.join("fullchain.pem"), chain.as_bytes(), false)
}

/// Writes `bytes` to `path` through a temporary file in the same directory: written,
/// synced, renamed over `path`, and the directory synced.
fn write_atomically(path: &Path, bytes: &[u8], private: bool) -> Result<(), String> {
    let dir = path.parent().ok_or("no directory")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.{:016x}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        fastrand::u64(..)
    ));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        std::env::temp_dir().join(format!("rampart-acme-store-{}", fastrand::u64(..)))
    }

    #[test]
    fn a_stored_certificate_is_used_only_for_the_names_it_covers() {
        let storage = dir();
        let names = vec!["a.test".to_string(), "b.test".to_string()];
        assert!(load_certificate(&storage, "z", &names).unwrap().is_none());
        let c = rcgen::generate_simple_self_signed(names.clone()).unwrap();
        save_certificate(&storage, "z", &c.cert.pem(), &c.signing_key.serialize_pem()).unwrap();
        assert!(load_certificate(&storage, "z", &names).unwrap().is_some());
        let more = vec!["a.test".to_string(), "c.test".to_string()];
        let err = load_certificate(&storage, "z", &more).err().unwrap();
        assert!(err.contains("does not cover c.test"), "{err}");
        // The key is the owner's only, and no temporary file is left.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key = cert_dir(&storage, "z").join("privkey.pem");
            assert_eq!(
                std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let left: Vec<_> = std::fs::read_dir(cert_dir(&storage, "z"))
            .unwrap()
            .collect();
        assert_eq!(left.len(), 2);
        let _ = std::fs::remove_dir_all(&storage);
    }

    #[test]
    fn an_unwritable_storage_is_an_error_that_names_the_file() {
        let storage = dir();
        std::fs::write(&storage, b"a file, not a directory").unwrap();
        let err = save_certificate(&storage, "z", "chain", "key").unwrap_err();
        assert!(err.contains("cannot create"), "{err}");
        let _ = std::fs::remove_file(&storage);
    }
}
