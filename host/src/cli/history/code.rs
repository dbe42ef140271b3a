//! The code of every run: `xp history diff`, `xp history restore`, and freeing the snapshot
//! files no run references (`xp history delete`, `--prune`).

use std::path::Path;

use anyhow::{bail, Context};

use super::super::args::OutputFormat;
use super::super::output;
use super::super::CommandContext;
use crate::history::{HistoryStore, RunRecord};
use crate::project::Project;
use crate::snapshot::code::{self, CodeDiff};
use crate::snapshot::{self, Access, Manifest, Store};

/// A run's manifest from the history.
fn manifest_of(store: &HistoryStore, record: &RunRecord) -> anyhow::Result<Manifest> {
    Ok(code::manifest_of(store, record)?)
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
    // Held shared while the objects are read: a prune waits.
    let store_lock = Store::open(&project.xp_dir(), Access::Shared)?;
    let report = code::diff(
        &code::Objects::in_store(&store_lock),
        &from.run_id,
        &old,
        &to.run_id,
        &new,
    )?;
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
