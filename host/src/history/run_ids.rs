//! Run ids unique on this machine, not only in one project's history.
//!
//! A run id is `<project folder name>_<milliseconds>`, as Workbench made them. Two projects
//! with the same folder name (`project`, `experiment`) submitting in the same millisecond
//! would get the same id, and the id is what finds a run's processes (`XP_RUN_ID`), its
//! containers and its folder on a remote host: cancelling one would end the other. So every
//! new id is also claimed in a folder all of this user's xp processes share, with an
//! exclusive create; a taken id moves on to the next millisecond.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// How long a claim is kept: ids carry the time they were made, so an id older than this can
/// no longer be made again.
const CLAIM_KEPT: Duration = Duration::from_secs(600);

/// The folder of claims: one per user, in the temporary folder.
fn claims_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    std::env::temp_dir().join(format!("xp-run-ids-{uid}"))
}

/// Claims `run_id` for this machine. False when another process has it. When the claims
/// folder cannot be used (a read-only temporary folder), every id counts as free: the
/// project's own history still keeps them apart.
pub fn claim(run_id: &str) -> bool {
    let dir = claims_dir();
    if std::fs::create_dir_all(&dir).is_err() {
        return true;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(run_id))
    {
        Ok(_) => true,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(_) => true,
    }
}

/// Removes claims too old to matter (now and then, so the folder stays small).
pub fn forget_old_claims() {
    let Ok(entries) = std::fs::read_dir(claims_dir()) else {
        return;
    };
    let Some(before) = SystemTime::now().checked_sub(CLAIM_KEPT) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .is_ok_and(|modified| modified < before);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_claimed_once() {
        let id = format!("claimtest_{}_{}", std::process::id(), crate::history::record::now_ms());
        assert!(claim(&id));
        assert!(!claim(&id), "a second claim of the same id fails");
        let _ = std::fs::remove_file(claims_dir().join(&id));
    }
}
