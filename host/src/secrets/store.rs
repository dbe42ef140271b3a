//! The per-user secret store: `<config dir>/secrets/`, owner-only (0700), one file per secret
//! (0600), each written atomically.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use xp_plugin_api::SECRET_REFERENCE_PREFIX;

use super::SecretError;

/// The store's folder under the user's configuration folder.
pub const SECRETS_DIR: &str = "secrets";
const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;
const MAX_ID_LEN: usize = 200;

/// `text` as a part of an id: letters, digits, `-` and `_`, at most `limit` characters.
fn clean(text: &str, limit: usize) -> String {
    let mut cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(limit)
        .collect();
    if cleaned.is_empty() {
        cleaned.push('_');
    }
    cleaned
}

/// Fills `buffer` from the kernel's random source.
fn fill_random(buffer: &mut [u8]) {
    let mut filled = 0;
    while filled < buffer.len() {
        // SAFETY: getrandom(2) writes at most the given length into the buffer.
        let got = unsafe { libc::getrandom(buffer[filled..].as_mut_ptr().cast(), buffer.len() - filled, 0) };
        if got > 0 {
            filled += got as usize;
        } else if std::io::Error::last_os_error().kind() != ErrorKind::Interrupted {
            // Without getrandom(2) (very old kernels): the same source as a file.
            use std::io::Read;
            std::fs::File::open("/dev/urandom")
                .and_then(|mut file| file.read_exact(&mut buffer[filled..]))
                .expect("the kernel's random source is readable");
            return;
        }
    }
}

/// The SHA-256 of a project folder's path, in hex: how a secret names the project it serves.
pub fn project_key(project_root: &Path) -> String {
    Sha256::digest(project_root.as_os_str().as_encoded_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whom a stored secret serves: the project (by [`project_key`]) and target that stored it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub project_key: String,
    /// The project's folder as text, for people reading the store.
    pub project: String,
    pub target: String,
    pub setting: String,
}

impl Binding {
    pub fn new(project_root: &Path, target: &str, setting: &str) -> Binding {
        Binding {
            project_key: project_key(project_root),
            project: project_root.display().to_string(),
            target: target.to_owned(),
            setting: setting.to_owned(),
        }
    }
}

/// A secret as the store holds it.
#[derive(Debug, Clone)]
pub struct StoredSecret {
    pub value: String,
    /// `None` for a secret written by xp 0.1, which kept only the value.
    pub binding: Option<Binding>,
}

impl StoredSecret {
    /// Whether this secret, stored under `id`, serves `setting` of target `target` of the
    /// project at `project_root`. One written by xp 0.1 serves the project and target whose
    /// names its id carries.
    pub fn serves(&self, id: &SecretId, project_root: &Path, target: &str, setting: &str) -> bool {
        match &self.binding {
            Some(binding) => binding.project_key == project_key(project_root) && binding.target == target,
            None => *id == SecretId::legacy(project_root, target, setting),
        }
    }
}

/// The first line of a secret file of this format; the JSON of [`FileBody`] follows.
const FORMAT_LINE: &str = "xp-secret 2\n";

#[derive(Serialize, Deserialize)]
struct FileBody {
    #[serde(flatten)]
    binding: Binding,
    value: String,
}

/// The name of one secret in the store, safe as a file name: ASCII letters, digits, `-`, `_`
/// and `.`, not starting with `.`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretId(String);

impl SecretId {
    /// Checks a stored or hand-written id (from a `secret:<id>` reference): nothing that could
    /// leave the store's folder gets through.
    pub fn parse(text: &str) -> Result<SecretId, SecretError> {
        let ok = !text.is_empty()
            && text.len() <= MAX_ID_LEN
            && !text.starts_with('.')
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if ok {
            Ok(SecretId(text.to_owned()))
        } else {
            Err(SecretError::BadId { id: text.to_owned() })
        }
    }

    /// A new id for a target's setting: `<target>-<setting>-<32 random hex digits>`. Random, so
    /// that no one can name another project's secret by guessing; attaching a target again
    /// stores a new secret and removes the one it replaced.
    pub fn generate(target: &str, setting: &str) -> SecretId {
        let mut random = [0u8; 16];
        fill_random(&mut random);
        let hex: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
        SecretId(format!("{}-{}-{hex}", clean(target, 100), clean(setting, 80)))
    }

    /// The id xp 0.1 gave a target's setting: `<target>-<setting>-<hash of the project folder>`.
    /// A secret stored under such an id still serves the project and target it names.
    pub fn legacy(project_root: &Path, target: &str, setting: &str) -> SecretId {
        let hash: String = project_key(project_root)[..8].to_owned();
        SecretId(format!("{}-{}-{hash}", clean(target, 100), clean(setting, 80)))
    }

    /// The id of a setting value `secret:<id>`; `None` when the value is not a reference.
    pub fn from_reference(value: &str) -> Option<Result<SecretId, SecretError>> {
        value
            .strip_prefix(SECRET_REFERENCE_PREFIX)
            .map(|id| SecretId::parse(id.trim()))
    }

    /// The setting value that refers to this secret: `secret:<id>`.
    pub fn reference(&self) -> String {
        format!("{SECRET_REFERENCE_PREFIX}{}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SecretId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The user's secret store.
#[derive(Debug, Clone)]
pub struct SecretStore {
    dir: PathBuf,
}

impl SecretStore {
    /// The store of the user whose configuration folder is `config_dir`. Nothing is created
    /// until a secret is put.
    pub fn new(config_dir: &Path) -> SecretStore {
        SecretStore {
            dir: config_dir.join(SECRETS_DIR),
        }
    }

    /// The store's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a secret lives.
    pub fn path(&self, id: &SecretId) -> PathBuf {
        self.dir.join(id.as_str())
    }

    fn io_error(&self, what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SecretError {
        let path = path.to_path_buf();
        move |source| SecretError::Io { what, path, source }
    }

    /// Creates the folder (0700) when missing and makes sure nobody else may enter it.
    fn ensure_dir(&self) -> Result<(), SecretError> {
        if let Some(parent) = self.dir.parent() {
            std::fs::create_dir_all(parent).map_err(self.io_error("creating", parent))?;
        }
        match DirBuilder::new().mode(DIR_MODE).create(&self.dir) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::AlreadyExists => {}
            Err(error) => return Err(self.io_error("creating", &self.dir)(error)),
        }
        let metadata = std::fs::symlink_metadata(&self.dir).map_err(self.io_error("reading", &self.dir))?;
        if !metadata.is_dir() {
            return Err(SecretError::NotAFolder { path: self.dir.clone() });
        }
        // The umask may only have removed bits; a folder made by hand may have more.
        if metadata.permissions().mode() & 0o777 != DIR_MODE {
            std::fs::set_permissions(&self.dir, Permissions::from_mode(DIR_MODE))
                .map_err(self.io_error("restricting the permissions of", &self.dir))?;
        }
        Ok(())
    }

    /// Stores `value` under `id` for whom `binding` names, replacing any earlier value at once:
    /// it is written to a new owner-only file beside it, which then takes the old one's place.
    pub fn put(&self, id: &SecretId, binding: &Binding, value: &str) -> Result<(), SecretError> {
        let body = FileBody {
            binding: binding.clone(),
            value: value.to_owned(),
        };
        let text = format!(
            "{FORMAT_LINE}{}\n",
            serde_json::to_string(&body).expect("plain data serialises")
        );
        self.put_raw(id, &text)
    }

    fn put_raw(&self, id: &SecretId, value: &str) -> Result<(), SecretError> {
        self.ensure_dir()?;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let target = self.path(id);
        let (temp_path, mut file) = loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let temp_path = self.dir.join(format!(
                ".{}.tmp-{}-{}-{nanos}",
                id.as_str(),
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            // Owner-only from the first byte: the mode is given at creation, never changed later.
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&temp_path)
            {
                Ok(file) => break (temp_path, file),
                Err(error) if error.kind() == ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(self.io_error("creating", &temp_path)(error)),
            }
        };
        let written = file
            .write_all(value.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(self.io_error("writing", &temp_path))
            .and_then(|()| std::fs::rename(&temp_path, &target).map_err(self.io_error("replacing", &target)));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp_path);
        }
        written
    }

    /// The secret stored under `id`, if any, with whom it serves.
    pub fn get(&self, id: &SecretId) -> Result<Option<StoredSecret>, SecretError> {
        let path = self.path(id);
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| SecretError::NotText { path: path.clone() })?,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(self.io_error("reading", &path)(error)),
        };
        let Some(json) = text.strip_prefix(FORMAT_LINE) else {
            // Written by xp 0.1: the value alone.
            return Ok(Some(StoredSecret {
                value: text,
                binding: None,
            }));
        };
        let body: FileBody = serde_json::from_str(json).map_err(|_| SecretError::NotText { path })?;
        Ok(Some(StoredSecret {
            value: body.value,
            binding: Some(body.binding),
        }))
    }

    /// Removes the secret stored under `id`; true when there was one.
    pub fn remove(&self, id: &SecretId) -> Result<bool, SecretError> {
        let path = self.path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
            Err(error) => Err(self.io_error("removing", &path)(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn id(text: &str) -> SecretId {
        SecretId::parse(text).unwrap()
    }

    fn binding() -> Binding {
        Binding::new(Path::new("/p/one"), "t", "password")
    }

    fn value(store: &SecretStore, key: &SecretId) -> Option<String> {
        store.get(key).unwrap().map(|secret| secret.value)
    }

    #[test]
    fn put_get_remove_with_owner_only_modes() {
        let home = tempfile::tempdir().unwrap();
        let store = SecretStore::new(&home.path().join("config"));
        assert_eq!(value(&store, &id("t-password-1")), None);
        store.put(&id("t-password-1"), &binding(), "hunter2\n").unwrap();
        assert_eq!(value(&store, &id("t-password-1")).as_deref(), Some("hunter2\n"));
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&store.path(&id("t-password-1"))), 0o600);
        assert!(store.remove(&id("t-password-1")).unwrap());
        assert!(!store.remove(&id("t-password-1")).unwrap());
        assert_eq!(value(&store, &id("t-password-1")), None);
    }

    #[test]
    fn put_replaces_atomically_and_leaves_no_temporary_files() {
        let home = tempfile::tempdir().unwrap();
        let store = SecretStore::new(home.path());
        let key = id("t-privateKey-1");
        store.put(&key, &binding(), "first").unwrap();
        let before = std::fs::metadata(store.path(&key)).unwrap();
        store.put(&key, &binding(), "second, longer value").unwrap();
        assert_eq!(value(&store, &key).as_deref(), Some("second, longer value"));
        // A rename gives a new file: a reader holding the old one never sees a half-written value.
        use std::os::unix::fs::MetadataExt;
        assert_ne!(before.ino(), std::fs::metadata(store.path(&key)).unwrap().ino());
        assert_eq!(mode(&store.path(&key)), 0o600);
        let names: Vec<String> = std::fs::read_dir(store.dir())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["t-privateKey-1".to_owned()]);
    }

    #[test]
    fn a_looser_existing_folder_is_tightened() {
        let home = tempfile::tempdir().unwrap();
        let store = SecretStore::new(home.path());
        std::fs::create_dir(store.dir()).unwrap();
        std::fs::set_permissions(store.dir(), Permissions::from_mode(0o755)).unwrap();
        store.put(&id("a"), &binding(), "x").unwrap();
        assert_eq!(mode(store.dir()), 0o700);
    }

    #[test]
    fn ids_are_safe_file_names() {
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b", "a\0b", "é"] {
            assert!(SecretId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(SecretId::parse("gpu-box-password-0a1b2c3d").is_ok());
        let made = SecretId::generate("gpu.box", "pass/word");
        assert!(SecretId::parse(made.as_str()).is_ok(), "{made}");
        assert!(made.as_str().starts_with("gpu_box-pass_word-"), "{made}");
    }

    #[test]
    fn ids_are_random_and_legacy_ids_are_the_path_hash() {
        let one = SecretId::generate("gpu", "password");
        let two = SecretId::generate("gpu", "password");
        assert_ne!(one, two);
        assert_eq!(one.as_str().len(), "gpu-password-".len() + 32, "{one}");
        assert_eq!(SecretId::from_reference(&one.reference()).unwrap().unwrap(), one);
        // As xp 0.1 made them: `<target>-<setting>-<first 8 hex digits of the path's SHA-256>`.
        let legacy = SecretId::legacy(Path::new("/p/one"), "gpu", "password");
        let hash = project_key(Path::new("/p/one"));
        assert_eq!(legacy.as_str(), format!("gpu-password-{}", &hash[..8]));
        assert!(SecretId::from_reference("plain").is_none());
        assert!(SecretId::from_reference("secret:../../etc/passwd").unwrap().is_err());
    }

    #[test]
    fn errors_name_the_store_path_and_never_the_value() {
        let home = tempfile::tempdir().unwrap();
        let blocker = home.path().join("config");
        std::fs::write(&blocker, "a file where a folder should be").unwrap();
        let store = SecretStore::new(&blocker);
        let error = store
            .put(&id("t-password-1"), &binding(), "hunter2")
            .unwrap_err()
            .to_string();
        assert!(error.contains(&blocker.display().to_string()), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}

#[cfg(test)]
mod scope_tests {
    use super::*;

    #[test]
    fn a_secret_serves_only_the_project_and_target_that_stored_it() {
        let home = tempfile::tempdir().unwrap();
        let store = SecretStore::new(home.path());
        let mine = Path::new("/p/mine");
        let id = SecretId::generate("gpu", "password");
        store
            .put(&id, &Binding::new(mine, "gpu", "password"), "hunter2")
            .unwrap();
        let secret = store.get(&id).unwrap().unwrap();
        assert!(secret.serves(&id, mine, "gpu", "password"));
        assert!(!secret.serves(&id, Path::new("/p/attacker"), "gpu", "password"));
        assert!(!secret.serves(&id, mine, "other", "password"));
        let text = std::fs::read_to_string(store.path(&id)).unwrap();
        assert!(
            text.starts_with(FORMAT_LINE) && text.contains("\"target\":\"gpu\""),
            "{text}"
        );

        // A secret xp 0.1 wrote (the value alone) serves the project whose path hash its id
        // carries, and the target and setting it names.
        let legacy = SecretId::legacy(mine, "gpu", "password");
        store.put_raw(&legacy, "old-value").unwrap();
        let secret = store.get(&legacy).unwrap().unwrap();
        assert_eq!(secret.value, "old-value");
        assert!(secret.binding.is_none());
        assert!(secret.serves(&legacy, mine, "gpu", "password"));
        assert!(!secret.serves(&legacy, Path::new("/p/attacker"), "gpu", "password"));
        assert!(!secret.serves(&legacy, mine, "gpu2", "password"));
    }
}
