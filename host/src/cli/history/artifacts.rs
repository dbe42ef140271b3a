//! Artifacts and assets: `history download`, `history promote`, `asset list`, and
//! `history delete`, which removes runs with their files.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::super::args::{AssetCommand, OutputFormat};
use super::super::output;
use super::super::CommandContext;
use crate::history::{format_utc, now_ms, HistoryStore, RunRecord};
use crate::project::{validate_name, Project};

/// The files of a run matching `selector` (an artifact path or a folder of them).
fn select<'a>(record: &'a RunRecord, selector: Option<&str>) -> anyhow::Result<Vec<&'a String>> {
    let Some(selector) = selector else {
        return Ok(record.artifacts.iter().collect());
    };
    let selector = selector.trim_end_matches('/');
    let chosen: Vec<&String> = record
        .artifacts
        .iter()
        .filter(|a| a.as_str() == selector || a.starts_with(&format!("{selector}/")))
        .collect();
    if chosen.is_empty() {
        bail!(
            "run {} has no artifact '{selector}'; it has: {}",
            record.run_id,
            if record.artifacts.is_empty() {
                "none".to_owned()
            } else {
                record.artifacts.join(", ")
            }
        );
    }
    Ok(chosen)
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
    let files = select(&record, artifact)?;
    let run_dir = store.run_dir(&record.run_id);
    let destination = context.cwd.join(dir);
    // Check everything first: a refused download changes nothing.
    for file in &files {
        let source = run_dir.join(file);
        if !source.is_file() {
            bail!(
                "artifact {file} of run {} is missing from {}",
                record.run_id,
                source.display()
            );
        }
        let target = destination.join(file);
        if target.exists() && !overwrite {
            bail!("{} exists; pass --overwrite to replace it", target.display());
        }
    }
    for file in &files {
        let target = destination.join(file);
        std::fs::create_dir_all(target.parent().expect("artifact paths have a folder"))
            .with_context(|| format!("creating {}", destination.display()))?;
        std::fs::copy(run_dir.join(file), &target).with_context(|| format!("writing {}", target.display()))?;
    }
    if !context.quiet {
        eprintln!(
            "Downloaded {} file(s) of run {} into {}",
            files.len(),
            record.run_id,
            destination.display()
        );
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

fn assets_dir(project: &Project) -> PathBuf {
    project.root().join("assets")
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
    if !record.artifacts.iter().any(|a| a == artifact_path) {
        bail!(
            "run {} has no artifact '{artifact_path}'; it has: {}",
            record.run_id,
            if record.artifacts.is_empty() {
                "none".to_owned()
            } else {
                record.artifacts.join(", ")
            }
        );
    }
    let link_path = assets_dir(project).join(format!("{name}.link"));
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
    std::fs::create_dir_all(assets_dir(project)).context("creating assets/")?;
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
    let mut paths: Vec<PathBuf> = std::fs::read_dir(assets_dir(&project))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "link"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let link: AssetLink =
            serde_json::from_str(&text).with_context(|| format!("{} is not an xp asset link", path.display()))?;
        let exists = project.root().join(&link.location).is_file();
        rows.push(vec![
            link.name.clone(),
            link.run_id.clone(),
            link.artifact_path.clone(),
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
