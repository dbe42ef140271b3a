//! The database layout. Bump [`VERSION`] and add a step to [`migrate`] for every change.

use rusqlite::Connection;

pub const VERSION: i64 = 4;

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

/// Step 3: each run's snapshot. `runs.snapshot` is the id of its manifest (the SHA-256 of the
/// manifest's text), with its file count and size beside it for listings; the manifests
/// themselves are kept once per distinct id, however many runs share one.
const V3: &str = r#"
ALTER TABLE runs ADD COLUMN snapshot TEXT;
ALTER TABLE runs ADD COLUMN snapshot_files INTEGER;
ALTER TABLE runs ADD COLUMN snapshot_bytes INTEGER;
CREATE INDEX runs_by_snapshot ON runs(snapshot);
CREATE TABLE snapshots (
    id       TEXT PRIMARY KEY,
    files    INTEGER NOT NULL,
    bytes    INTEGER NOT NULL,
    manifest BLOB NOT NULL             -- the manifest's text (see snapshot::manifest)
);
"#;

/// Step 4: what the web view sorts and searches by, indexed, so a page of 100,000 runs sorted
/// by start or duration, or searched by text, reads a page's worth of index rather than every
/// run. Duration is `ended_ms - start` for runs that ended (indexed; it never changes again)
/// and `now - start` for the others (few; found by their own partial index). The text search
/// is a trigram index (substrings, case-insensitive) over the columns a search matches, kept
/// by triggers, so every writer keeps it current without knowing about it.
const V4: &str = r#"
CREATE INDEX runs_by_start ON runs(COALESCE(started_ms, created_ms));
CREATE INDEX runs_by_duration ON runs((ended_ms - COALESCE(started_ms, created_ms))) WHERE ended_ms IS NOT NULL;
CREATE INDEX runs_not_ended ON runs(run_number) WHERE ended_ms IS NULL;
CREATE INDEX runs_by_script ON runs(script, run_number);
CREATE VIRTUAL TABLE runs_text USING fts5(
    run_id, script, arguments, content='runs', content_rowid='run_number', tokenize='trigram');
CREATE TRIGGER runs_text_insert AFTER INSERT ON runs BEGIN
    INSERT INTO runs_text(rowid, run_id, script, arguments)
        VALUES (new.run_number, new.run_id, new.script, new.arguments);
END;
CREATE TRIGGER runs_text_delete AFTER DELETE ON runs BEGIN
    INSERT INTO runs_text(runs_text, rowid, run_id, script, arguments)
        VALUES ('delete', old.run_number, old.run_id, old.script, old.arguments);
END;
CREATE TRIGGER runs_text_update AFTER UPDATE OF run_id, script, arguments ON runs BEGIN
    INSERT INTO runs_text(runs_text, rowid, run_id, script, arguments)
        VALUES ('delete', old.run_number, old.run_id, old.script, old.arguments);
    INSERT INTO runs_text(rowid, run_id, script, arguments)
        VALUES (new.run_number, new.run_id, new.script, new.arguments);
END;
INSERT INTO runs_text(runs_text) VALUES ('rebuild');
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
    if current < 3 {
        tx.execute_batch(V3)?;
    }
    if current < 4 {
        tx.execute_batch(V4)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()
}
