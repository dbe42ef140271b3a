mod artifacts;
mod code;
mod compare;
mod logs;
mod query;

use anyhow::bail;
use xp_plugin_api::RunStatus;

pub use artifacts::assets;

use super::args::{HistoryCommand, HistoryListArgs, OutputFormat};
use super::output;
use super::CommandContext;
use crate::history::{format_duration, format_utc, now_ms, HistoryStore, ListFilter, RunRecord, Unwritable};

pub fn run(context: &CommandContext, command: HistoryCommand) -> anyhow::Result<i32> {
    let project = context.project()?;
    // Reading works where nothing can be written (a read-only or full disk); where it can
    // be written, runs whose driver vanished are closed first, in this one explicit step.
    let store = HistoryStore::open_read(&project.xp_dir())?;
    match store.read_only() {
        None => {
            crate::run::reap_vanished(&project, &context.dirs, &store)?;
        }
        Some(cause) if !context.quiet => eprintln!(
            "note: the run history is read-only here ({}): it is shown as it was recorded",
            match cause {
                Unwritable::ReadOnly => "a read-only file system",
                Unwritable::Full => "no space left on device",
            }
        ),
        Some(_) => {}
    }
    match command {
        HistoryCommand::List(args) => list(&store, args),
        HistoryCommand::Info { run, output } => {
            let record = store.get(&run)?;
            show(&record, output.output);
            Ok(0)
        }
        HistoryCommand::Last(output) => match store.latest()? {
            Some(record) => {
                show(&record, output.output);
                Ok(0)
            }
            None => bail!(
                "no runs in {} yet; submit one with `xp experiment submit`",
                project.root().display()
            ),
        },
        HistoryCommand::Logs { run, follow } => logs::print(&store, &run, follow, &|store| {
            crate::run::reap_vanished(&project, &context.dirs, store).map(|_| ())
        }),
        HistoryCommand::Compare { runs, output } => compare::compare(&store, &runs, output.output),
        HistoryCommand::Metrics { run, name, output } => compare::metrics(&store, &run, name.as_deref(), output.output),
        HistoryCommand::Download {
            run,
            artifact,
            dir,
            overwrite,
        } => artifacts::download(context, &store, &run, artifact.as_deref(), &dir, overwrite),
        HistoryCommand::Promote {
            run,
            artifact_path,
            name,
            force,
        } => artifacts::promote(context, &project, &store, &run, &artifact_path, &name, force),
        HistoryCommand::Delete {
            runs,
            older_than,
            prune,
        } => {
            // Snapshots still mounted by runs whose driver died are released before their
            // folders go.
            crate::snapshot::release_finished(&project.xp_dir().join("runs"), |run_id| {
                store.run_is_over(run_id).unwrap_or(false)
            });
            if !(prune && runs.is_empty() && older_than.is_none()) {
                artifacts::delete(context, &store, &runs, older_than.as_deref())?;
            }
            code::prune(context, &project, &store)
        }
        HistoryCommand::Diff { from, to, output } => code::diff(&project, &store, &from, &to, output.output),
        HistoryCommand::Restore { run, dir } => code::restore(context, &project, &store, &run, &dir),
    }
}

fn list(store: &HistoryStore, args: HistoryListArgs) -> anyhow::Result<i32> {
    let status = match &args.status {
        Some(text) => Some(RunStatus::parse(text).ok_or_else(|| {
            anyhow::anyhow!(
                "--status {text}: expected one of {}",
                RunStatus::ALL.map(|s| s.as_str()).join(", ")
            )
        })?),
        None => None,
    };
    let default_limit = if args.query.is_some() { usize::MAX >> 1 } else { 20 };
    let filter = ListFilter {
        status,
        target: args.target,
        limit: args.limit.unwrap_or(default_limit),
        before: None,
    };
    if let Some(query) = &args.query {
        let found = query::evaluate(store, &filter, query)?;
        output::print(&output::json(&*found));
        return Ok(0);
    }
    let mut records = store.list(&filter)?;
    if matches!(args.output.output, OutputFormat::Json) {
        store.fill_last_metrics(&mut records)?;
    }
    match args.output.output {
        OutputFormat::Json => output::print(&output::json(&records)),
        OutputFormat::Table => {
            let now = now_ms();
            let rows = records
                .iter()
                .map(|r| {
                    vec![
                        r.run_number.to_string(),
                        r.run_id.clone(),
                        r.status_text(),
                        output::one_line(&r.target),
                        output::one_line(&r.script),
                        format_utc(r.created_ms),
                        r.duration_ms(now).map(format_duration).unwrap_or_default(),
                    ]
                })
                .collect();
            output::print(&output::table(
                &["#", "RUN ID", "STATUS", "TARGET", "SCRIPT", "CREATED (UTC)", "DURATION"],
                rows,
            ));
        }
    }
    Ok(0)
}

fn show(record: &RunRecord, format: OutputFormat) {
    let now = now_ms();
    match format {
        OutputFormat::Json => {
            let mut json = serde_json::to_value(record).expect("plain data");
            json["duration_ms"] = record.duration_ms(now).into();
            output::print(&output::json(&json));
        }
        OutputFormat::Table => {
            let optional_time = |ms: Option<i64>| ms.map(format_utc).unwrap_or_else(|| "-".into());
            let mut rows = vec![
                vec!["Run id".into(), record.run_id.clone()],
                vec!["Run number".into(), record.run_number.to_string()],
                vec!["Status".into(), record.status_text()],
                vec!["Script".into(), output::one_line(&record.script)],
                vec![
                    "Arguments".into(),
                    record
                        .arguments
                        .iter()
                        .map(|argument| output::one_line(argument))
                        .collect::<Vec<_>>()
                        .join(" "),
                ],
                vec!["Target".into(), record.target.clone()],
                vec!["Run configuration".into(), record.runconfig.clone()],
                vec!["Created (UTC)".into(), format_utc(record.created_ms)],
                vec!["Started (UTC)".into(), optional_time(record.started_ms)],
                vec!["Ended (UTC)".into(), optional_time(record.ended_ms)],
                vec![
                    "Duration".into(),
                    record.duration_ms(now).map(format_duration).unwrap_or_default(),
                ],
                vec![
                    "Exit code".into(),
                    record.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                ],
            ];
            if let Some(error) = &record.error {
                rows.push(vec!["Error".into(), error.clone()]);
            }
            if !record.lost.is_empty() {
                rows.push(vec!["Lost".into(), record.lost.join("\n")]);
            }
            if let Some(commit) = &record.git_commit {
                rows.push(vec!["Git commit".into(), commit.clone()]);
            }
            if let Some(snapshot) = &record.snapshot {
                rows.push(vec![
                    "Snapshot".into(),
                    format!(
                        "{} files, {} ({})",
                        snapshot.files,
                        human_bytes(snapshot.bytes),
                        &snapshot.id[..snapshot.id.len().min(12)]
                    ),
                ]);
            }
            for (name, value) in &record.metrics {
                rows.push(vec![
                    format!("Metric {}", output::one_line(name)),
                    super::computetarget::display_value(value),
                ]);
            }
            if !record.artifacts.is_empty() {
                rows.push(vec!["Artifacts".into(), record.artifacts.join("\n")]);
            }
            if !record.artifact_links.is_empty() {
                let links: Vec<String> = record
                    .artifact_links
                    .iter()
                    .map(|link| format!("{} -> {}", link.path, link.target))
                    .collect();
                rows.push(vec!["Links (not followed)".into(), links.join("\n")]);
            }
            output::print(&output::table(&["FIELD", "VALUE"], rows));
        }
    }
}

/// `1.5 MB`, `830 B`: decimal units, as `du --si`.
fn human_bytes(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}
