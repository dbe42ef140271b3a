//! The project's content-addressed store, `.xp/store/`: `objects/ab/cdef…` (a file's bytes,
//! named by their SHA-256), `index` (see [`super::index`]), `trees/` (see [`super::overlay`])
//! and `lock`. Objects are written once under a temporary name and renamed, so a reader never
//! sees half an object; nothing ever writes to an object afterwards.
//!
//! Every user of the store holds `lock`: submits shared (from reading the project until the
//! run's manifest is recorded), the pruning of unreferenced objects exclusive.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::Hash;
use super::SnapshotError;

/// Files up to this size are read whole and written only when their object is missing;
/// larger ones are streamed into a temporary object while they are hashed (one read).
const SMALL_FILE: u64 = 256 * 1024;

pub struct Store {
    root: PathBuf,
    /// Held (shared or exclusive) for as long as the store is open.
    _lock: File,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Shared,
    Exclusive,
}

impl Store {
    /// Opens (creating) the store in a project's `.xp/` folder, locked as `access` says.
    pub fn open(xp_dir: &Path, access: Access) -> Result<Store, SnapshotError> {
        let root = xp_dir.join("store");
        let io = |source| SnapshotError::Io {
            what: "opening the snapshot store",
            path: root.clone(),
            source,
        };
        std::fs::create_dir_all(root.join("objects")).map_err(io)?;
        std::fs::create_dir_all(root.join("tmp")).map_err(io)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join("lock"))
            .map_err(io)?;
        let locked = match access {
            Access::Shared => lock.lock_shared(),
            Access::Exclusive => lock.lock(),
        };
        locked.map_err(io)?;
        Ok(Store { root, _lock: lock })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn index_path(&self) -> PathBuf {
        self.root.join("index")
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.root.join("objects")
    }

    pub fn object_path(&self, hash: &Hash) -> PathBuf {
        let hex = hash.hex();
        self.root.join("objects").join(&hex[..2]).join(&hex[2..])
    }

    pub fn has(&self, hash: &Hash) -> bool {
        self.object_path(hash).exists()
    }

    /// Puts `bytes` in the store (a no-op when they are there) and returns their hash.
    pub fn add_bytes(&self, bytes: &[u8], mode: u32) -> std::io::Result<Hash> {
        let hash = Hash::of(bytes);
        if !self.has(&hash) {
            let (staging, mut file) = self.staging_file()?;
            file.write_all(bytes)?;
            self.commit(staging, file, &hash, mode)?;
        }
        Ok(hash)
    }

    /// Puts the content of `source` in the store and returns its hash and size. The object is
    /// hashed from the bytes written, so it always matches its name even if `source` changes
    /// meanwhile.
    pub fn add_file(&self, source: &Path, size_hint: u64, mode: u32) -> std::io::Result<(Hash, u64)> {
        let mut input = File::open(source)?;
        if size_hint <= SMALL_FILE {
            let mut bytes = Vec::with_capacity(size_hint as usize);
            input.read_to_end(&mut bytes)?;
            return Ok((self.add_bytes(&bytes, mode)?, bytes.len() as u64));
        }
        let (staging, mut file) = self.staging_file()?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        let mut size = 0u64;
        let copied = (|| loop {
            let read = input.read(&mut buffer)?;
            if read == 0 {
                return Ok::<(), std::io::Error>(());
            }
            hasher.update(&buffer[..read]);
            file.write_all(&buffer[..read])?;
            size += read as u64;
        })();
        if let Err(error) = copied {
            let _ = std::fs::remove_file(&staging);
            return Err(error);
        }
        let hash = Hash(hasher.finalize().into());
        if self.has(&hash) {
            let _ = std::fs::remove_file(&staging);
        } else {
            self.commit(staging, file, &hash, mode)?;
        }
        Ok((hash, size))
    }

    fn staging_file(&self) -> std::io::Result<(PathBuf, File)> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let number = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.root.join("tmp").join(format!("{}-{number}", std::process::id()));
        let file = File::create(&path)?;
        Ok((path, file))
    }

    fn commit(&self, staging: PathBuf, file: File, hash: &Hash, mode: u32) -> std::io::Result<()> {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))?;
        drop(file);
        let target = self.object_path(hash);
        let parent = target.parent().expect("objects live in a fan-out folder");
        if let Err(error) = std::fs::rename(&staging, &target) {
            if error.kind() != std::io::ErrorKind::NotFound {
                let _ = std::fs::remove_file(&staging);
                return Err(error);
            }
            std::fs::create_dir_all(parent)?;
            std::fs::rename(&staging, &target).inspect_err(|_| {
                let _ = std::fs::remove_file(&staging);
            })?;
        }
        Ok(())
    }

    /// Every object in the store, with its size.
    pub fn all_objects(&self) -> std::io::Result<Vec<(Hash, PathBuf, u64)>> {
        let mut found = Vec::new();
        for fan in std::fs::read_dir(self.objects_dir())? {
            let fan = fan?;
            let prefix = fan.file_name().to_string_lossy().into_owned();
            if !fan.file_type()?.is_dir() {
                continue;
            }
            for object in std::fs::read_dir(fan.path())? {
                let object = object?;
                let name = format!("{prefix}{}", object.file_name().to_string_lossy());
                if let Some(hash) = Hash::parse(&name) {
                    let size = object.metadata().map(|m| m.len()).unwrap_or(0);
                    found.push((hash, object.path(), size));
                }
            }
        }
        Ok(found)
    }

    /// Removes temporary files an interrupted writer left (only with the exclusive lock).
    pub fn clear_staging(&self) {
        if let Ok(entries) = std::fs::read_dir(self.root.join("tmp")) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
