//! Replacing the configuration file of a running proxy: the management API's edits, and the
//! changes other nodes of a fleet send. The text is checked by the loader first; the file is
//! always either the old or the new text.

use std::io::Write as _;
use std::path::Path;

use super::{ConfigError, Loaded, load_str};

/// One change of the file at a time, whoever makes it (the management API's edits, which
/// read the file, change it and write it whole, and the fleet's changes from other nodes).
pub static EDITING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Why a new text did not replace the file.
#[derive(Debug)]
pub enum SaveError {
    /// The text is not a valid configuration: its errors.
    Invalid(Vec<ConfigError>),
    /// The file could not be written.
    Io(String),
}

/// Checks `text` with the loader (relative paths taken from the file's directory), then
/// writes it in place of the file at `path`. The loaded configuration is returned, with its
/// `source` set, for the caller to put in force.
pub fn replace_file(path: &Path, text: &str) -> Result<Loaded, SaveError> {
    let name = path.display().to_string();
    let mut loaded =
        load_str(&name, text, path.parent()).map_err(|e| SaveError::Invalid(e.errors))?;
    write_atomically(path, text.as_bytes())
        .map_err(|e| SaveError::Io(format!("cannot write {name}: {e}")))?;
    loaded.config.source = Some(path.to_path_buf());
    Ok(loaded)
}

/// Writes `bytes` to a temporary file beside `path` (named `.<name>.<pid>.<n>.tmp`), syncs
/// it, and renames it over `path` (then syncs the directory), so that the file is always
/// either the old or the new content. The temporary file is removed on failure.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or("config".into(), |n| n.to_string_lossy());
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        // The file keeps its permissions (it may hold secrets' hashes).
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
