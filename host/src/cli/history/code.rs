//! The code of every run: `xp history diff`, `xp history restore`, and freeing the snapshot
//! files no run references (`xp history delete`, `--prune`).

use std::path::Path;

use anyhow::{bail, Context};
use serde::Serialize;

use super::super::args::OutputFormat;
use super::super::output;
use super::super::CommandContext;
use crate::history::{HistoryStore, RunRecord};
use crate::project::Project;
use crate::snapshot::{self, Access, Kind, Manifest, Store};

/// Text files larger than this are compared by hash only.
const MAX_DIFF_BYTES: u64 = 4 << 20;

/// A run's manifest from the history.
fn manifest_of(store: &HistoryStore, record: &RunRecord) -> anyhow::Result<Manifest> {
    let Some(snapshot) = &record.snapshot else {
        bail!(
            "run {} has no snapshot: it ran before xp kept the code of every run",
            record.run_id
        );
    };
    let text = store
        .manifest(&snapshot.id)?
        .with_context(|| format!("the history has no manifest {} for run {}", snapshot.id, record.run_id))?;
    Manifest::decode(&text).with_context(|| format!("reading the manifest of run {}", record.run_id))
}

#[derive(Serialize)]
struct Change {
    path: String,
    /// added, removed, changed (content), mode (permission bits only), kind (file <-> link...).
    change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Serialize)]
struct CodeDiff {
    from: String,
    to: String,
    added: usize,
    removed: usize,
    changed: usize,
    changes: Vec<Change>,
}

fn describe(kind: &Kind) -> &'static str {
    match kind {
        Kind::File { .. } => "file",
        Kind::Dir => "folder",
        Kind::Link { .. } => "link",
    }
}

/// The text of an object, when it is text small enough to show.
fn text_of(objects: &Store, kind: &Kind) -> anyhow::Result<Option<String>> {
    let Kind::File { hash, size } = kind else {
        return Ok(None);
    };
    if *size > MAX_DIFF_BYTES {
        return Ok(None);
    }
    let path = objects.object_path(hash);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.contains(&0) {
        return Ok(None);
    }
    Ok(String::from_utf8(bytes).ok())
}

fn file_diff(objects: &Store, path: &str, old: Option<&Kind>, new: Option<&Kind>) -> anyhow::Result<Option<String>> {
    let old_text = match old {
        Some(kind) => text_of(objects, kind)?,
        None => Some(String::new()),
    };
    let new_text = match new {
        Some(kind) => text_of(objects, kind)?,
        None => Some(String::new()),
    };
    let (Some(old_text), Some(new_text)) = (old_text, new_text) else {
        return Ok(None);
    };
    let diff = similar::TextDiff::from_lines(&old_text, &new_text);
    let old_name = if old.is_some() {
        format!("a/{path}")
    } else {
        "/dev/null".into()
    };
    let new_name = if new.is_some() {
        format!("b/{path}")
    } else {
        "/dev/null".into()
    };
    Ok(Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&old_name, &new_name)
            .to_string(),
    ))
}

fn size_note(kind: &Kind) -> String {
    match kind {
        Kind::File { size, .. } => format!("{size} bytes"),
        other => describe(other).to_owned(),
    }
}

pub fn diff(
    project: &Project,
    store: &HistoryStore,
    from: &str,
    to: &str,
    format: OutputFormat,
) -> anyhow::Result<i32> {
    let from = store.get(from)?;
    let to = store.get(to)?;
    let (old, new) = (manifest_of(store, &from)?, manifest_of(store, &to)?);
    let objects = Store::open(&project.xp_dir(), Access::Shared)?;
    let mut changes = Vec::new();
    let (mut added, mut removed, mut changed) = (0, 0, 0);
    let (mut a, mut b) = (old.entries.iter().peekable(), new.entries.iter().peekable());
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.path.cmp(&y.path),
        };
        match order {
            std::cmp::Ordering::Less => {
                let entry = a.next().expect("peeked");
                if entry.kind == Kind::Dir {
                    continue;
                }
                removed += 1;
                let path = entry.path_text();
                let diff = file_diff(&objects, &path, Some(&entry.kind), None)?;
                let note = diff.is_none().then(|| size_note(&entry.kind));
                changes.push(Change {
                    path,
                    change: "removed",
                    diff,
                    note,
                });
            }
            std::cmp::Ordering::Greater => {
                let entry = b.next().expect("peeked");
                if entry.kind == Kind::Dir {
                    continue;
                }
                added += 1;
                let path = entry.path_text();
                let diff = file_diff(&objects, &path, None, Some(&entry.kind))?;
                let note = diff.is_none().then(|| size_note(&entry.kind));
                changes.push(Change {
                    path,
                    change: "added",
                    diff,
                    note,
                });
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (a.next().expect("peeked"), b.next().expect("peeked"));
                if x == y || (x.kind == Kind::Dir && y.kind == Kind::Dir) {
                    continue;
                }
                changed += 1;
                let path = x.path_text();
                let change = if x.kind == y.kind {
                    Change {
                        path,
                        change: "mode",
                        diff: None,
                        note: Some(format!("{:o} -> {:o}", x.mode, y.mode)),
                    }
                } else if describe(&x.kind) != describe(&y.kind) {
                    Change {
                        path,
                        change: "kind",
                        diff: None,
                        note: Some(format!("{} -> {}", describe(&x.kind), describe(&y.kind))),
                    }
                } else {
                    let diff = file_diff(&objects, &path, Some(&x.kind), Some(&y.kind))?;
                    let mut notes = Vec::new();
                    if diff.is_none() {
                        notes.push(format!("binary: {} -> {}", size_note(&x.kind), size_note(&y.kind)));
                    }
                    if x.mode != y.mode {
                        notes.push(format!("mode {:o} -> {:o}", x.mode, y.mode));
                    }
                    Change {
                        path,
                        change: "changed",
                        diff,
                        note: (!notes.is_empty()).then(|| notes.join("; ")),
                    }
                };
                changes.push(change);
            }
        }
    }
    let report = CodeDiff {
        from: from.run_id.clone(),
        to: to.run_id.clone(),
        added,
        removed,
        changed,
        changes,
    };
    match format {
        OutputFormat::Json => output::print(&output::json(&report)),
        OutputFormat::Table => print_diff(&report, &from, &to),
    }
    Ok(0)
}

fn print_diff(report: &CodeDiff, from: &RunRecord, to: &RunRecord) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let mut text = format!(
        "Code of run {} -> run {}: {} added, {} removed, {} changed\n",
        from.run_number, to.run_number, report.added, report.removed, report.changed
    );
    for change in &report.changes {
        let tag = match change.change {
            "added" => "A",
            "removed" => "D",
            "mode" => "m",
            "kind" => "T",
            _ => "M",
        };
        let note = change.note.as_ref().map(|n| format!("  ({n})")).unwrap_or_default();
        text.push_str(&format!("{tag}  {}{note}\n", change.path));
    }
    for change in &report.changes {
        if let Some(diff) = &change.diff {
            text.push('\n');
            text.push_str(diff);
        }
    }
    // A closed pipe (`| head`) ends the output quietly.
    let _ = out.write_all(text.as_bytes());
}

pub fn restore(
    context: &CommandContext,
    project: &Project,
    store: &HistoryStore,
    run: &str,
    dir: &Path,
) -> anyhow::Result<i32> {
    let record = store.get(run)?;
    let manifest = manifest_of(store, &record)?;
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} is not empty: restore writes a run's files into an empty or new folder",
                dir.display()
            );
        }
    }
    let objects = Store::open(&project.xp_dir(), Access::Shared)?;
    for hash in manifest.hashes() {
        if !objects.has(&hash) {
            bail!(
                "the store {} has lost a file of run {} (object {hash}); its code cannot be restored",
                objects.root().display(),
                record.run_id
            );
        }
    }
    snapshot::restore(&objects, &manifest, dir)
        .with_context(|| format!("writing run {}'s files to {}", record.run_id, dir.display()))?;
    if !context.quiet {
        let summary = manifest.summary();
        eprintln!(
            "Restored the code of run {} ({} files, {} bytes) into {}",
            record.run_id,
            summary.files,
            summary.bytes,
            dir.display()
        );
    }
    Ok(0)
}

/// Frees the store's objects that no run's manifest references.
pub fn prune(context: &CommandContext, project: &Project, store: &HistoryStore) -> anyhow::Result<i32> {
    let mut manifests = Vec::new();
    for stored in store.referenced_manifests()? {
        manifests.push(
            Manifest::decode(&stored.text).with_context(|| format!("reading the history's manifest {}", stored.id))?,
        );
    }
    let pruned = snapshot::prune(&project.xp_dir(), &manifests)?;
    if !context.quiet {
        eprintln!(
            "Freed {} snapshot file(s) ({} bytes) no run references; {} kept",
            pruned.objects, pruned.bytes, pruned.kept
        );
    }
    Ok(0)
}
