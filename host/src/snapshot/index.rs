//! The stat index: what each project file's content hash was when its size, times, inode and
//! mode were what they are now, so unchanged files are not read again (as git's index does).
//!
//! A file whose modification time falls within [`RACY_NS`] of the scan that indexed it is
//! kept but marked untrusted: a write in the same clock tick would not change its times, so
//! the next scan reads it again ("racily clean" in git's words).

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::manifest::Hash;

const MAGIC: &[u8; 8] = b"xpindex1";
/// How close to the scan a modification must be to be distrusted: file systems stamp times
/// from a coarse clock (a few ms), and some from whole seconds.
pub const RACY_NS: i64 = 2_000_000_000;

/// What a file looked like when it was hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    pub device: u64,
    pub mode: u32,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            inode: meta.ino(),
            device: meta.dev(),
            mode: meta.mode() & 0o7777,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Known {
    stamp: Stamp,
    hash: Hash,
    trusted: bool,
}

/// Path (relative, as bytes) -> the stamp and hash it had.
#[derive(Debug, Default)]
pub struct Index {
    entries: HashMap<Vec<u8>, Known>,
}

impl Index {
    /// Reads the index; a missing or unreadable one is empty (it is only a cache).
    pub fn load(path: &Path) -> Index {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| Index::decode(&bytes))
            .unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Option<Index> {
        let mut rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let mut entries = HashMap::new();
        while let Some(length) = take(4) {
            let length = u32::from_le_bytes(length.try_into().ok()?) as usize;
            let path = take(length)?.to_vec();
            let mut number = || take(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
            let stamp = Stamp {
                size: number()?,
                mtime_ns: number()? as i64,
                ctime_ns: number()? as i64,
                inode: number()?,
                device: number()?,
                mode: number()? as u32,
            };
            let trusted = take(1)?[0] == 1;
            let hash = Hash(take(32)?.try_into().ok()?);
            entries.insert(path, Known { stamp, hash, trusted });
        }
        Some(Index { entries })
    }

    /// The hash of `path` if the file still has `stamp` and the entry is trusted.
    pub fn lookup(&self, path: &[u8], stamp: &Stamp) -> Option<Hash> {
        self.entries
            .get(path)
            .filter(|known| known.trusted && known.stamp == *stamp)
            .map(|known| known.hash)
    }

    /// Records what `path` hashed to; `scan_started_ns` (wall clock) decides whether the
    /// entry can be trusted next time.
    pub fn record(&mut self, path: Vec<u8>, stamp: Stamp, hash: Hash, scan_started_ns: i64) {
        let trusted = stamp.mtime_ns < scan_started_ns - RACY_NS && stamp.ctime_ns < scan_started_ns - RACY_NS;
        self.entries.insert(path, Known { stamp, hash, trusted });
    }

    /// Keeps only the entries whose path `keep` accepts (files gone from the project go).
    pub fn retain_paths(&mut self, keep: impl Fn(&[u8]) -> bool) {
        self.entries.retain(|path, _| keep(path));
    }

    /// Keeps only the entries whose hash `keep` accepts (after objects were pruned).
    pub fn retain_hashes(&mut self, keep: impl Fn(&Hash) -> bool) {
        self.entries.retain(|_, known| keep(&known.hash));
    }

    /// Writes the index beside `path` and renames it into place: readers never see half.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(16 + self.entries.len() * 120);
        bytes.extend_from_slice(MAGIC);
        for (name, known) in &self.entries {
            bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
            bytes.extend_from_slice(name);
            let stamp = known.stamp;
            for number in [
                stamp.size,
                stamp.mtime_ns as u64,
                stamp.ctime_ns as u64,
                stamp.inode,
                stamp.device,
                u64::from(stamp.mode),
            ] {
                bytes.extend_from_slice(&number.to_le_bytes());
            }
            bytes.push(u8::from(known.trusted));
            bytes.extend_from_slice(&known.hash.0);
        }
        let staging = path.with_extension(format!("tmp-{}", std::process::id()));
        let mut file = std::fs::File::create(&staging)?;
        file.write_all(&bytes)?;
        drop(file);
        std::fs::rename(&staging, path)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(mtime_ns: i64) -> Stamp {
        Stamp {
            size: 3,
            mtime_ns,
            ctime_ns: mtime_ns,
            inode: 7,
            device: 1,
            mode: 0o644,
        }
    }

    #[test]
    fn saves_and_loads_and_distrusts_racy_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let now = 100 * RACY_NS;
        let mut index = Index::default();
        index.record(b"old.py".to_vec(), stamp(now - 2 * RACY_NS), Hash::of(b"old"), now);
        index.record(b"new.py".to_vec(), stamp(now - 1), Hash::of(b"new"), now);
        index.save(&path).unwrap();
        let loaded = Index::load(&path);
        assert_eq!(loaded.len(), 2);
        assert_eq!(
            loaded.lookup(b"old.py", &stamp(now - 2 * RACY_NS)),
            Some(Hash::of(b"old"))
        );
        assert_eq!(loaded.lookup(b"old.py", &stamp(now)), None, "a changed stamp");
        assert_eq!(loaded.lookup(b"new.py", &stamp(now - 1)), None, "racily clean");
    }

    #[test]
    fn a_damaged_index_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        std::fs::write(&path, b"xpindex1\x05\x00\x00\x00ab").unwrap();
        assert_eq!(Index::load(&path).len(), 0);
        assert_eq!(Index::load(&dir.path().join("missing")).len(), 0);
    }
}
