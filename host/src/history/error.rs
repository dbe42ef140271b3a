use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("run history {}: {source}", path.display())]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("run history {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("run history {} was written by a newer xp (schema {found}, this xp reads up to {supported}); update xp", path.display())]
    NewerSchema { path: PathBuf, found: i64, supported: i64 },

    #[error("no run '{0}' in this project's history; `xp history list` shows the runs")]
    NoSuchRun(String),

    #[error("no space left on device on {}: the run history {} cannot be written; free space there and run again", folder.display(), path.display())]
    DiskFull {
        path: PathBuf,
        folder: PathBuf,
        /// What SQLite or the system said, for debugging.
        detail: String,
    },

    #[error("{} is on a read-only file system: the run history {} cannot be written there (reading it works: xp history list, info, logs)", folder.display(), path.display())]
    ReadOnly { path: PathBuf, folder: PathBuf },
}
