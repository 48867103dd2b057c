//! The disk tier: one file per stored variant under `[cache] disk_path`, an index of them in
//! memory, a bound in bytes with least-recently-used eviction, and a restart that rebuilds the
//! index from the files.
//!
//! A file is written whole to `tmp/` and renamed into place, so a reader never sees half of
//! one; a crash can still leave a torn or corrupt file (the rename is not fsynced: a cache
//! loses nothing it cannot fetch again), and the format's length and checksum catch it: at
//! the restart, a file whose head or length is wrong is deleted; a file whose body does not
//! match its checksum is deleted when it is read, and never served.
//!
//! Every method does blocking file I/O: callers run them with `spawn_blocking`.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rampart_cache::codec::{self, CodecError};
use rampart_cache::object::{Meta, Object};
use smallvec::SmallVec;

/// What a restart found on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Objects indexed.
    pub objects: usize,
    /// Bytes they take.
    pub bytes: u64,
    /// Files deleted: torn, corrupt, foreign, or left half-written in `tmp/`.
    pub dropped: usize,
}

struct Entry {
    key: Box<str>,
    secondary: Box<[u8]>,
    vary: Box<[Box<str>]>,
    /// What purges look at (the object's metadata, without its body).
    meta: Meta,
    size: u64,
    /// When it was last read or written, in the index's own ticks.
    used: u64,
}

#[derive(Default)]
struct Index {
    /// By file id (a stable hash of key and variant, the file's name).
    entries: HashMap<u64, Entry>,
    /// The ids of each key's variants.
    by_key: HashMap<Box<str>, SmallVec<[u64; 1]>>,
    bytes: u64,
    tick: u64,
}

impl Index {
    fn add(&mut self, id: u64, entry: Entry) -> Option<Entry> {
        let old = self.remove(id);
        self.bytes += entry.size;
        self.by_key.entry(entry.key.clone()).or_default().push(id);
        self.entries.insert(id, entry);
        old
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let e = self.entries.remove(&id)?;
        self.bytes -= e.size;
        if let Some(ids) = self.by_key.get_mut(&e.key) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.by_key.remove(&e.key);
            }
        }
        Some(e)
    }
}

/// The disk tier.
pub struct Disk {
    dir: PathBuf,
    capacity: u64,
    index: Mutex<Index>,
}

/// A file's id: its key and variant hashed (stable across restarts and builds).
fn file_id(key: &str, secondary: &[u8]) -> u64 {
    codec::fnv64(&[key.as_bytes(), &[0xff], secondary])
}

impl Disk {
    /// Opens (creating it if need be) the tier at `dir`, bounded to `capacity` bytes, and
    /// indexes what a previous run left there.
    pub fn open(dir: &Path, capacity: u64) -> std::io::Result<(Disk, Recovered)> {
        std::fs::create_dir_all(dir.join("tmp"))?;
        let mut index = Index::default();
        let mut recovered = Recovered::default();
        for entry in std::fs::read_dir(dir.join("tmp"))? {
            let _ = std::fs::remove_file(entry?.path());
            recovered.dropped += 1;
        }
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if path.is_dir() {
                continue;
            }
            match read_head(&path) {
                Ok((id, e)) if e.size <= capacity => {
                    index.add(id, e);
                }
                Ok(_) | Err(_) => {
                    tracing::warn!("cache: dropping {}: not a whole object", path.display());
                    let _ = std::fs::remove_file(&path);
                    recovered.dropped += 1;
                }
            }
        }
        recovered.objects = index.entries.len();
        recovered.bytes = index.bytes;
        let disk = Disk {
            dir: dir.to_path_buf(),
            capacity,
            index: Mutex::new(index),
        };
        disk.evict();
        Ok((disk, recovered))
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:016x}"))
    }

    /// The id of the variant of `key` that fits the request whose fields `header` gives, if
    /// the tier has one (no I/O).
    pub fn find<'h>(&self, key: &str, header: impl Fn(&str) -> Option<&'h [u8]>) -> Option<u64> {
        let index = self.index();
        let ids = index.by_key.get(key)?;
        let first = index.entries.get(ids.first()?)?;
        let wanted = rampart_cache::store::secondary(&first.vary, &header);
        ids.iter().copied().find(|id| {
            index
                .entries
                .get(id)
                .is_some_and(|e| *e.secondary == *wanted)
        })
    }

    /// Reads the object with id `id`; a file that is gone, torn or corrupt is dropped, and
    /// none is returned.
    pub fn read(&self, id: u64) -> Option<Object> {
        let path = self.path(id);
        let decoded = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| codec::decode(&b).map_err(|e| e.to_string()));
        match decoded {
            Ok(head) => {
                let mut index = self.index();
                index.tick += 1;
                let tick = index.tick;
                if let Some(e) = index.entries.get_mut(&id) {
                    e.used = tick;
                }
                Some(head.object)
            }
            Err(e) => {
                tracing::warn!("cache: dropping {}: {e}", path.display());
                self.index().remove(id);
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Writes `object` for `key` and the variant `secondary`, replacing what was there, and
    /// evicts the least recently used past the bound.
    pub fn write(&self, key: &str, secondary: &[u8], object: &Object) -> std::io::Result<()> {
        let bytes = codec::encode(key, secondary, object);
        let size = bytes.len() as u64;
        if size > self.capacity {
            return Ok(());
        }
        let id = file_id(key, secondary);
        let tmp = self
            .dir
            .join("tmp")
            .join(format!("{id:016x}.{}", fastrand::u64(..)));
        std::fs::write(&tmp, &bytes)?;
        if let Err(e) = std::fs::rename(&tmp, self.path(id)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let mut meta = object.meta.clone();
        meta.etag = None;
        {
            let mut index = self.index();
            index.tick += 1;
            let used = index.tick;
            index.add(
                id,
                Entry {
                    key: key.into(),
                    secondary: secondary.into(),
                    vary: object.meta.vary.clone(),
                    meta,
                    size,
                    used,
                },
            );
        }
        self.evict();
        Ok(())
    }

    /// Deletes the least recently used files until the tier is within its bound (down to
    /// 90% of it, so that eviction runs in batches, not at every write).
    fn evict(&self) {
        let victims: Vec<u64> = {
            let mut index = self.index();
            if index.bytes <= self.capacity {
                return;
            }
            let mut by_age: Vec<(u64, u64, u64)> = index
                .entries
                .iter()
                .map(|(id, e)| (e.used, *id, e.size))
                .collect();
            by_age.sort_unstable();
            let target = self.capacity / 10 * 9;
            let mut out = Vec::new();
            for (_, id, _) in by_age {
                if index.bytes <= target {
                    break;
                }
                index.remove(id);
                out.push(id);
            }
            out
        };
        for id in victims {
            let _ = std::fs::remove_file(self.path(id));
        }
    }

    /// Deletes every object whose metadata `matches`; how many.
    pub fn purge(&self, matches: impl Fn(&Meta) -> bool) -> usize {
        let victims: Vec<u64> = {
            let mut index = self.index();
            let ids: Vec<u64> = index
                .entries
                .iter()
                .filter(|(_, e)| matches(&e.meta))
                .map(|(id, _)| *id)
                .collect();
            for id in &ids {
                index.remove(*id);
            }
            ids
        };
        for id in &victims {
            let _ = std::fs::remove_file(self.path(*id));
        }
        victims.len()
    }

    /// Objects indexed.
    pub fn len(&self) -> usize {
        self.index().entries.len()
    }

    /// Whether the tier is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the files take.
    pub fn bytes(&self) -> u64 {
        self.index().bytes
    }

    /// The bound in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }
}

/// The index entry of the file at `path`, from its head alone (and its length checked).
fn read_head(path: &Path) -> Result<(u64, Entry), String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    let mut prefix = [0u8; 12];
    file.read_exact(&mut prefix).map_err(|e| e.to_string())?;
    let n = codec::head_len(&prefix).map_err(|e| e.to_string())? as usize;
    let mut bytes = prefix.to_vec();
    bytes.resize(12 + n + 8, 0);
    file.read_exact(&mut bytes[12..])
        .map_err(|e| e.to_string())?;
    let head = codec::decode_head(&bytes).map_err(|e| e.to_string())?;
    if head.total_len != size {
        return Err(CodecError::Length {
            expected: head.total_len,
            found: size,
        }
        .to_string());
    }
    let id = file_id(&head.key, &head.secondary);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name != format!("{id:016x}") {
        return Err("its name is not its key's".into());
    }
    let meta = head.object.meta;
    Ok((
        id,
        Entry {
            key: head.key.into(),
            secondary: head.secondary.into(),
            vary: meta.vary.clone(),
            meta,
            size,
            used: 0,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn object(body: &str, tag: &str) -> Object {
        Object {
            encoded: Default::default(),
            status: 200,
            fields: rampart_cache::object::Fields::new([(&b"ETag"[..], &b"\"1\""[..])]),
            body: Bytes::copy_from_slice(body.as_bytes()),
            meta: Meta {
                zone: "z".into(),
                url: "https://a.test/x".into(),
                tags: vec![Box::from(tag)].into_boxed_slice(),
                ..Default::default()
            },
        }
    }

    fn dir() -> PathBuf {
        std::env::temp_dir().join(format!("rampart-disk-test-{}", fastrand::u64(..)))
    }

    #[test]
    fn objects_survive_a_reopen_and_bad_files_are_dropped() {
        let d = dir();
        let (disk, r) = Disk::open(&d, 1 << 20).unwrap();
        assert_eq!(r, Recovered::default());
        disk.write("k1", b"", &object("one", "a")).unwrap();
        disk.write("k2", b"", &object("two", "b")).unwrap();
        disk.write("k3", b"", &object("three", "b")).unwrap();
        let id3 = disk.find("k3", |_| None).unwrap();
        drop(disk);
        // A torn file, a foreign one, a half-written one in tmp/, and a corrupt body.
        let torn = codec::encode("k9", b"", &object("nine", "a"));
        std::fs::write(
            d.join(format!("{:016x}", file_id("k9", b""))),
            &torn[..torn.len() - 3],
        )
        .unwrap();
        std::fs::write(d.join("notes.txt"), "hello").unwrap();
        std::fs::write(d.join("tmp").join("x.1"), "half").unwrap();
        let p3 = d.join(format!("{id3:016x}"));
        let mut b = std::fs::read(&p3).unwrap();
        let at = b.len() - 10;
        b[at] ^= 1;
        std::fs::write(&p3, b).unwrap();

        let (disk, r) = Disk::open(&d, 1 << 20).unwrap();
        assert_eq!((r.objects, r.dropped), (3, 3), "{r:?}");
        let id1 = disk.find("k1", |_| None).unwrap();
        assert_eq!(disk.read(id1).unwrap().body, "one");
        assert!(disk.read(id3).is_none(), "a corrupt body is never served");
        assert!(disk.find("k3", |_| None).is_none(), "and is dropped");
        assert!(!p3.exists());
        assert_eq!(disk.purge(|m| m.tags.iter().any(|t| &**t == "b")), 1);
        assert_eq!(disk.len(), 1);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn the_bound_holds_and_the_least_recently_used_go_first() {
        let d = dir();
        let body = "x".repeat(1000);
        let size = codec::encode("k0", b"", &object(&body, "t")).len() as u64;
        let (disk, _) = Disk::open(&d, size * 10).unwrap();
        for i in 0..10 {
            disk.write(&format!("k{i}"), b"", &object(&body, "t"))
                .unwrap();
        }
        let keep = disk.find("k0", |_| None).unwrap();
        assert!(disk.read(keep).is_some());
        disk.write("k10", b"", &object(&body, "t")).unwrap();
        assert!(disk.bytes() <= size * 10);
        assert!(disk.find("k0", |_| None).is_some(), "read recently: kept");
        assert!(
            disk.find("k1", |_| None).is_none(),
            "the oldest unread: gone"
        );
        let files = std::fs::read_dir(&d).unwrap().count() - 1;
        assert_eq!(files, disk.len(), "evicted files are deleted");
        let _ = std::fs::remove_dir_all(d);
    }
}
