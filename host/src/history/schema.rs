//! The database layout. Bump [`VERSION`] and add a step to [`migrate`] for every change.

use rusqlite::Connection;

pub const VERSION: i64 = 2;

const V1: &str = r#"
CREATE TABLE runs (
    run_number   INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       TEXT NOT NULL UNIQUE,
    script       TEXT NOT NULL,
    arguments    TEXT NOT NULL,          -- JSON list
    target       TEXT NOT NULL,
    runconfig    TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    started_ms   INTEGER,
    ended_ms     INTEGER,
    exit_code    INTEGER,
    error        TEXT,
    git_commit   TEXT,
    artifacts    TEXT NOT NULL DEFAULT '[]', -- JSON list
    driver_pid   INTEGER,
    driver_start INTEGER
);
CREATE INDEX runs_by_status ON runs(status, run_number);
CREATE INDEX runs_by_target ON runs(target, run_number);
CREATE TABLE metrics (
    run_number INTEGER NOT NULL REFERENCES runs(run_number) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    step       INTEGER NOT NULL,
    value      TEXT NOT NULL,              -- JSON
    time_ms    INTEGER NOT NULL,
    PRIMARY KEY (run_number, name, step)
) WITHOUT ROWID;
"#;

/// Links the script left in `outputs/` (recorded, never followed), and what a run could not
/// keep (log, metrics, artifacts) with why: a run that lost data is never plainly Completed.
const V2: &str = r#"
ALTER TABLE runs ADD COLUMN artifact_links TEXT NOT NULL DEFAULT '[]'; -- JSON list of {path, target}
ALTER TABLE runs ADD COLUMN lost TEXT NOT NULL DEFAULT '[]';           -- JSON list
"#;

/// Brings a database to [`VERSION`]; `found` is its `user_version`.
pub fn migrate(conn: &mut Connection, found: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Another process may have migrated while this one waited for the lock.
    let current: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current < 1 && found < 1 {
        tx.execute_batch(V1)?;
    }
    if current < 2 {
        tx.execute_batch(V2)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()
}
