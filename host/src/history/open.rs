//! Opening the run history: for writing (submit, cancel, delete) or for reading, which also
//! works where nothing can be written — a read-only file system, a full disk — and errors
//! that say which of those it is in words.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::schema;
use super::HistoryError;

pub const DATABASE_FILE: &str = "history.db";

/// Why the file system under a path refuses writes, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unwritable {
    ReadOnly,
    Full,
}

/// Below this much free space a history write is expected to fail: SQLite writes whole
/// pages to its log and maps a shared-memory index beside the database.
const NEARLY_FULL_BYTES: u64 = 64 * 1024;

/// Whether the file system holding `path` (or its nearest existing parent) is read-only or
/// full, from statvfs(3).
pub fn unwritable(path: &Path) -> Option<Unwritable> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let text = CString::new(existing.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills a plain struct from a NUL-terminated path.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(text.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    if stat.f_flag & libc::ST_RDONLY != 0 {
        return Some(Unwritable::ReadOnly);
    }
    let free = stat.f_bavail as u64 * stat.f_frsize as u64;
    (free < NEARLY_FULL_BYTES).then_some(Unwritable::Full)
}

/// An error about the history at `path`, in words when the cause is the file system.
pub fn database_error(path: &Path, source: rusqlite::Error) -> HistoryError {
    let code = source.sqlite_error_code();
    let by_code = match code {
        Some(rusqlite::ErrorCode::DiskFull) => Some(Unwritable::Full),
        Some(rusqlite::ErrorCode::ReadOnly) => Some(Unwritable::ReadOnly),
        _ => None,
    };
    let cause = by_code.or_else(|| {
        // I/O and open errors on a full or read-only disk carry SQLite's own words
        // (`xShmMap`, `unable to open database file`); the file system says what they mean.
        matches!(
            code,
            Some(rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::CannotOpen)
        )
        .then(|| unwritable(path))
        .flatten()
    });
    match cause {
        Some(cause) => unwritable_error(path, cause, source.to_string()),
        None => HistoryError::Database {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// An I/O error about a history file or folder, in words when the cause is the file system.
pub fn io_error(path: &Path, source: std::io::Error) -> HistoryError {
    let cause = match source.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => Some(Unwritable::Full),
        Some(libc::EROFS) => Some(Unwritable::ReadOnly),
        _ => None,
    };
    match cause {
        Some(cause) => unwritable_error(path, cause, source.to_string()),
        None => HistoryError::Io {
            path: path.to_path_buf(),
            source,
        },
    }
}

fn unwritable_error(path: &Path, cause: Unwritable, detail: String) -> HistoryError {
    let folder = path.parent().unwrap_or(path).to_path_buf();
    match cause {
        Unwritable::Full => HistoryError::DiskFull {
            path: path.to_path_buf(),
            folder,
            detail,
        },
        Unwritable::ReadOnly => HistoryError::ReadOnly {
            path: path.to_path_buf(),
            folder,
        },
    }
}

/// `path` as an SQLite URI (`file:` with `?`, `#` and `%` escaped) with `query`.
fn uri(path: &Path, query: &str) -> String {
    let mut text = String::from("file:");
    for byte in path.as_os_str().as_bytes() {
        match byte {
            b'?' | b'#' | b'%' => text.push_str(&format!("%{byte:02X}")),
            byte if byte.is_ascii() && !byte.is_ascii_control() => text.push(*byte as char),
            byte => text.push_str(&format!("%{byte:02X}")),
        }
    }
    text.push('?');
    text.push_str(query);
    text
}

/// Opens (creating if needed) the history in `xp_dir` for reading and writing, migrated to
/// this xp's schema.
pub fn open_writable(xp_dir: &Path) -> Result<(Connection, PathBuf), HistoryError> {
    std::fs::create_dir_all(xp_dir).map_err(|source| io_error(xp_dir, source))?;
    let path = xp_dir.join(DATABASE_FILE);
    // Processes opening a new history at once can make SQLite refuse one of them at once
    // (`database is locked`, without waiting: a lock upgrade that could deadlock). Such a
    // refusal is brief: try again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match open_writable_once(&path) {
            Err(HistoryError::Database { source, .. })
                if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.map(|conn| (conn, path.clone())),
        }
    }
}

fn open_writable_once(path: &Path) -> Result<Connection, HistoryError> {
    let db_error = |source| database_error(path, source);
    let mut conn = Connection::open(path).map_err(db_error)?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(db_error)?;
    // WAL lets readers go on while a run writes; NORMAL sync is safe with WAL (a power
    // cut may lose the last commits, never corrupt the file).
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
        .map_err(db_error)?;
    let version = schema_version(&conn).map_err(db_error)?;
    check_not_newer(path, version)?;
    if version < schema::VERSION {
        schema::migrate(&mut conn, version).map_err(db_error)?;
    }
    Ok(conn)
}

fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

fn check_not_newer(path: &Path, version: i64) -> Result<(), HistoryError> {
    if version > schema::VERSION {
        return Err(HistoryError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: schema::VERSION,
        });
    }
    Ok(())
}

/// How a history was opened for reading.
pub struct ReadOpened {
    pub conn: Connection,
    pub path: PathBuf,
    /// The schema of the file, which a read-only history keeps as it is.
    pub version: i64,
    /// Why nothing can be written, when it cannot.
    pub read_only: Option<Unwritable>,
}

/// Opens the history in `xp_dir` for reading. Where it can be written it is opened as for
/// writing (so the commands that reap vanished runs can); on a read-only or full disk it is
/// opened read-only — as SQLite's `immutable` file when even its shared-memory index cannot be
/// made there — and a project without a history reads as an empty one.
pub fn open_readable(xp_dir: &Path) -> Result<ReadOpened, HistoryError> {
    let path = xp_dir.join(DATABASE_FILE);
    let cause = unwritable(xp_dir);
    if cause.is_none() {
        match open_writable(xp_dir) {
            Ok((conn, path)) => {
                return Ok(ReadOpened {
                    conn,
                    path,
                    version: schema::VERSION,
                    read_only: None,
                })
            }
            Err(HistoryError::DiskFull { .. } | HistoryError::ReadOnly { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    let cause = cause.or_else(|| unwritable(xp_dir)).unwrap_or(Unwritable::Full);
    if !path.exists() {
        // Nothing recorded and nowhere to record it: an empty history.
        let mut conn = Connection::open_in_memory().map_err(|source| database_error(&path, source))?;
        schema::migrate(&mut conn, 0).map_err(|source| database_error(&path, source))?;
        return Ok(ReadOpened {
            conn,
            path,
            version: schema::VERSION,
            read_only: Some(cause),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let attempt = |query: &str| -> rusqlite::Result<(Connection, i64)> {
        let conn = Connection::open_with_flags(uri(&path, query), flags)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let version = schema_version(&conn)?;
        // A WAL database needs its index to be read: make sure one read works.
        conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |row| row.get::<_, i64>(0))?;
        Ok((conn, version))
    };
    let (conn, version) = attempt("mode=ro")
        .or_else(|_| attempt("immutable=1"))
        .map_err(|source| database_error(&path, source))?;
    check_not_newer(&path, version)?;
    Ok(ReadOpened {
        conn,
        path,
        version,
        read_only: Some(cause),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_escape_what_sqlite_reads_as_syntax() {
        assert_eq!(
            uri(Path::new("/a b/c?d#e%f/h.db"), "mode=ro"),
            "file:/a b/c%3Fd%23e%25f/h.db?mode=ro"
        );
    }

    #[test]
    fn a_missing_history_on_a_writable_disk_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let opened = open_readable(&dir.path().join(".xp")).unwrap();
        assert!(opened.read_only.is_none());
        assert!(dir.path().join(".xp").join(DATABASE_FILE).is_file());
    }
}
