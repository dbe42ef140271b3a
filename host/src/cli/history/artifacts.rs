//! Artifacts and assets: `history download`, `history promote`, `asset list`, and
//! `history delete`, which removes runs with their files.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use xp_plugin_sdk::artifacts::prepare_parents;

use super::super::args::{AssetCommand, OutputFormat};
use super::super::output;
use super::super::CommandContext;
use crate::history::artifacts::{a_few, name_bytes, ArtifactLink};
use crate::history::{format_utc, now_ms, open_artifact, HistoryStore, RunRecord};
use crate::project::{validate_name, Project};

/// What a selector picks from a run: its files, and the links it names (never followed).
struct Selection<'a> {
    files: Vec<&'a String>,
    links: Vec<&'a ArtifactLink>,
}

/// Whether a recorded name is `selector` or lies in the folder `selector`.
fn selected(name: &str, selector: &str) -> bool {
    name == selector || name.strip_prefix(selector).is_some_and(|rest| rest.starts_with('/'))
}

/// The artifacts of a run matching `selector` (an artifact path or a folder of them).
fn select<'a>(record: &'a RunRecord, selector: Option<&str>) -> anyhow::Result<Selection<'a>> {
    let Some(selector) = selector else {
        return Ok(Selection {
            files: record.artifacts.iter().collect(),
            links: record.artifact_links.iter().collect(),
        });
    };
    let selector = selector.trim_end_matches('/');
    let selection = Selection {
        files: record.artifacts.iter().filter(|a| selected(a, selector)).collect(),
        links: record
            .artifact_links
            .iter()
            .filter(|link| selected(&link.path, selector))
            .collect(),
    };
    if selection.files.is_empty() && selection.links.is_empty() {
        bail!(
            "run {} has no artifact '{}'; it has: {}",
            record.run_id,
            output::one_line(selector),
            a_few(&record.artifacts)
        );
    }
    Ok(selection)
}

/// Why a file of a download cannot be written at `target` below `destination`, if it cannot:
/// nothing is created to find out, and no link in the way is followed.
fn blocked(destination: &Path, relative: &[u8], overwrite: bool) -> Option<String> {
    let mut path = destination.to_path_buf();
    let parts: Vec<&[u8]> = relative.split(|b| *b == b'/').collect();
    let (last, folders) = parts.split_last()?;
    for part in folders {
        path.push(OsStr::from_bytes(part));
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                return Some(format!("{} is a link; xp does not write through links", path.display()))
            }
            Ok(_) => return Some(format!("{} is not a folder", path.display())),
            Err(_) => return None,
        }
    }
    path.push(OsStr::from_bytes(last));
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => Some(format!("{} is a folder", path.display())),
        Ok(_) if !overwrite => Some(format!("{} exists; pass --overwrite to replace it", path.display())),
        _ => None,
    }
}

/// Writes the content of `source` as a new file at `target` (replacing a file or link there,
/// never writing through one).
fn write_new(mut source: std::fs::File, target: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    xp_plugin_sdk::artifacts::clear_place(target)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)?;
    std::io::copy(&mut source, &mut file)?;
    Ok(())
}

pub fn download(
    context: &CommandContext,
    store: &HistoryStore,
    run: &str,
    artifact: Option<&str>,
    dir: &Path,
    overwrite: bool,
) -> anyhow::Result<i32> {
    let record = store.get(run)?;
    let selection = select(&record, artifact)?;
    let run_dir = store.run_dir(&record.run_id);
    let destination = context.cwd.join(dir);
    // Links are recorded, never followed: asked for by name, one is an error; inside a
    // folder, they are skipped and named.
    if let [link] = selection.links.as_slice() {
        if selection.files.is_empty() {
            bail!(
                "{} of run {} is a link (to {}), not a file: xp never follows links in a run's outputs, so there is nothing to download",
                link.path,
                record.run_id,
                link.target
            );
        }
    }
    // Check everything first: a refused download changes nothing.
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for name in &selection.files {
        let bytes = match name_bytes(name) {
            Ok(bytes) => bytes,
            Err(error) => {
                problems.push(error.to_string());
                continue;
            }
        };
        if let Err(error) = open_artifact(&run_dir, name) {
            problems.push(error.to_string());
            continue;
        }
        if let Some(problem) = blocked(&destination, &bytes, overwrite) {
            problems.push(problem);
            continue;
        }
        files.push((name, bytes));
    }
    if !problems.is_empty() {
        bail!(
            "nothing was downloaded from run {}: {} of its {} file(s) cannot be: {}",
            record.run_id,
            problems.len(),
            selection.files.len(),
            a_few(&problems)
        );
    }
    for (name, bytes) in &files {
        let source = open_artifact(&run_dir, name)?;
        let target = prepare_parents(&destination, bytes)
            .with_context(|| format!("creating the folders of {name} in {}", destination.display()))?;
        write_new(source, &target).with_context(|| format!("writing {}", target.display()))?;
    }
    if !context.quiet {
        eprintln!(
            "Downloaded {} file(s) of run {} into {}",
            files.len(),
            record.run_id,
            destination.display()
        );
        if !selection.links.is_empty() {
            let links: Vec<String> = selection
                .links
                .iter()
                .map(|link| format!("{} -> {}", link.path, link.target))
                .collect();
            eprintln!(
                "Skipped {} link(s), which xp never follows: {}",
                links.len(),
                a_few(&links)
            );
        }
    }
    Ok(0)
}

/// `assets/NAME.link`: a named pointer at a run's artifact, as Workbench kept them.
#[derive(Serialize, Deserialize)]
struct AssetLink {
    name: String,
    run_id: String,
    run_number: u64,
    artifact_path: String,
    /// Where the file is, relative to the project.
    location: String,
    created_ms: i64,
}

pub fn promote(
    context: &CommandContext,
    project: &Project,
    store: &HistoryStore,
    run: &str,
    artifact_path: &str,
    name: &str,
    force: bool,
) -> anyhow::Result<i32> {
    validate_name(name, "asset")?;
    let record = store.get(run)?;
    if let Some(link) = record.artifact_links.iter().find(|link| link.path == artifact_path) {
        bail!(
            "{} of run {} is a link (to {}), not a file: xp never follows links in a run's outputs, so it cannot be promoted",
            link.path,
            record.run_id,
            link.target
        );
    }
    if !record.artifacts.iter().any(|a| a == artifact_path) {
        bail!(
            "run {} has no artifact '{}'; it has: {}",
            record.run_id,
            output::one_line(artifact_path),
            a_few(&record.artifacts)
        );
    }
    // What the record says must still be a file, reached without a link.
    open_artifact(&store.run_dir(&record.run_id), artifact_path)?;
    let link_path = project.assets_dir().join(format!("{name}.link"));
    if link_path.exists() && !force {
        bail!(
            "asset '{name}' exists ({}); pass --force to point it elsewhere",
            link_path.display()
        );
    }
    let location = store.run_dir(&record.run_id).join(artifact_path);
    let location = location
        .strip_prefix(project.root())
        .unwrap_or(&location)
        .to_string_lossy()
        .into_owned();
    let link = AssetLink {
        name: name.to_owned(),
        run_id: record.run_id.clone(),
        run_number: record.run_number,
        artifact_path: artifact_path.to_owned(),
        location,
        created_ms: now_ms(),
    };
    std::fs::create_dir_all(project.assets_dir()).context("creating assets/")?;
    std::fs::write(&link_path, output::json(&link) + "\n")
        .with_context(|| format!("writing {}", link_path.display()))?;
    if !context.quiet {
        eprintln!(
            "Promoted {artifact_path} of run {} as '{name}' ({})",
            record.run_id,
            link_path.display()
        );
    }
    Ok(0)
}

pub fn assets(context: &CommandContext, command: AssetCommand) -> anyhow::Result<i32> {
    let AssetCommand::List(format) = command;
    let project = context.project()?;
    let mut links = Vec::new();
    let mut rows = Vec::new();
    for path in project.asset_link_paths() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let link: AssetLink =
            serde_json::from_str(&text).with_context(|| format!("{} is not an xp asset link", path.display()))?;
        // The file the link names, checked by the run and artifact it records (never by its
        // `location` text, which anyone editing the file could point anywhere).
        let exists = is_run_id(&link.run_id)
            && open_artifact(&project.xp_dir().join("runs").join(&link.run_id), &link.artifact_path).is_ok();
        rows.push(vec![
            link.name.clone(),
            link.run_id.clone(),
            output::one_line(&link.artifact_path),
            format_utc(link.created_ms),
            if exists {
                "yes".into()
            } else {
                "missing (run deleted?)".into()
            },
        ]);
        let mut value = serde_json::to_value(&link).expect("plain data");
        value["exists"] = exists.into();
        links.push(value);
    }
    match format.output {
        OutputFormat::Json => output::print(&output::json(&links)),
        OutputFormat::Table => output::print(&output::table(
            &["NAME", "RUN", "ARTIFACT", "CREATED (UTC)", "FILE"],
            rows,
        )),
    }
    Ok(0)
}

/// Whether `text` could be a run id (`<project>_<epoch-ms>`): nothing that leaves `runs/`.
fn is_run_id(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('.')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `30d`, `12h`, `90m`, `45s` in milliseconds.
fn parse_age(text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("--older-than {text}: expected a number and a unit, e.g. 30d, 12h, 90m"))?;
    let unit_ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1000,
        _ => bail!("--older-than {text}: the unit must be d, h, m or s (e.g. 30d)"),
    };
    number
        .checked_mul(unit_ms)
        .filter(|age| *age < now_ms())
        .ok_or_else(|| anyhow::anyhow!("--older-than {text}: that is longer ago than the epoch; give a shorter age"))
}

pub fn delete(
    context: &CommandContext,
    store: &HistoryStore,
    runs: &[String],
    older_than: Option<&str>,
) -> anyhow::Result<i32> {
    let mut records = Vec::new();
    for run in runs {
        records.push(store.get(run)?);
    }
    if let Some(age) = older_than {
        records.extend(store.created_before(now_ms() - parse_age(age)?)?);
    }
    if runs.is_empty() && older_than.is_none() {
        bail!("name the runs to delete, or pass --older-than AGE");
    }
    // A run still going keeps its record: its driver writes to it.
    if let Some(running) = records.iter().find(|r| !r.status.is_final()) {
        bail!(
            "run {} is {}; cancel it first (`xp experiment cancel {}`)",
            running.run_id,
            running.status,
            running.run_id
        );
    }
    records.sort_by_key(|r| r.run_number);
    records.dedup_by_key(|r| r.run_number);
    for record in &records {
        let dir = store.run_dir(&record.run_id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        store.delete(record.run_number)?;
    }
    if !context.quiet {
        eprintln!("Deleted {} run(s)", records.len());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_have_units() {
        assert_eq!(parse_age("30d").unwrap(), 30 * 86_400_000);
        assert_eq!(parse_age("90m").unwrap(), 90 * 60_000);
        assert!(parse_age("30").is_err());
        assert!(parse_age("xd").is_err());
        assert!(parse_age("3w").is_err());
        assert!(
            parse_age("999999999999d").is_err(),
            "no overflow into a cutoff in the future"
        );
    }
}
