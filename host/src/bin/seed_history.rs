//! `xp-seed-history`: fills a project's run history with realistic finished runs and metric
//! series, for benchmarks of the history at scale.
//!
//! The store is opened with [`HistoryStore::open`], so the schema is the one `xp` writes; rows
//! go in through one transaction with prepared statements, which seeds 100 000 runs and a
//! million metric points in a few seconds. Runs are appended after any already recorded, with
//! creation times spread over the past months (and after the newest existing run), so run
//! numbers and times increase together as they do in real use. Only the database is written:
//! seeded runs have no log or artifact files in `.xp/runs/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use rusqlite::{params, Transaction};
use xp::history::{now_ms, HistoryStore};
use xp::project::{Project, CONFIG_DIR, XP_DIR};
use xp_plugin_api::RunStatus;

/// Seed a project's run history with realistic runs and metrics, for benchmarks.
#[derive(Debug, Parser)]
#[command(name = "xp-seed-history", version, max_term_width = 100)]
struct Args {
    /// The project folder; aml_config/ is created in it when missing.
    #[arg(long, value_name = "DIR")]
    project: PathBuf,

    /// How many runs to add.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    runs: u64,

    /// How many metric points to add, spread evenly over the new runs (2 or 3 metric names
    /// per run).
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    metrics: u64,

    /// Spread the runs' creation times over this many past days.
    #[arg(long, default_value_t = 180, value_name = "DAYS")]
    days: u32,

    /// Seed of the pseudo-random generator (the same seed gives the same rows).
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// splitmix64: small, fast, and good enough for made-up data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const SCRIPTS: &[&str] = &[
    "train.py",
    "iris_sklearn.py",
    "score.py",
    "tune.py",
    "preprocess.py",
    "models/cnn.py",
];
const LEARNING_RATES: &[&str] = &["0.1", "0.03", "0.01", "0.003", "0.001", "0.0001"];
const METRIC_SETS: &[&[&str]] = &[
    &["accuracy", "loss"],
    &["accuracy", "loss", "lr"],
    &["loss", "val_loss"],
    &["auc", "loss", "precision"],
];

/// More than any benchmark needs, and small enough that the seeding stays a matter of seconds
/// per run and metric times stay exact.
const MAX_POINTS_PER_RUN: u64 = 1_000_000;

struct Counts {
    runs: u64,
    metrics: u64,
}

fn arguments(rng: &mut Rng) -> String {
    let mut args: Vec<String> = Vec::new();
    match rng.below(10) {
        0..=1 => {}
        2..=6 => {
            args.extend(["--lr".into(), rng.pick(LEARNING_RATES).to_string()]);
            if rng.below(2) == 0 {
                args.extend(["--epochs".into(), (5 * (1 + rng.below(20))).to_string()]);
            }
        }
        7..=8 => {
            args.extend(["--alpha".into(), format!("{:.2}", rng.unit())]);
            args.extend(["--batch-size".into(), (16u64 << rng.below(5)).to_string()]);
        }
        _ => args.extend(["--data".into(), "data/iris.csv".into(), "--verbose".into()]),
    }
    serde_json::to_string(&args).expect("strings serialise")
}

/// A metric's value at `step` of `steps`, shaped like a training curve.
fn metric_value(name: &str, step: u64, steps: u64, rng: &mut Rng) -> String {
    let progress = (step + 1) as f64 / steps.max(1) as f64;
    let noise = (rng.unit() - 0.5) * 0.02;
    let value = match name {
        "loss" | "val_loss" => 2.0 * (-3.0 * progress).exp() + 0.05 + noise,
        "lr" => 0.01 * (1.0 - 0.9 * progress),
        _ => (0.5 + 0.45 * progress + noise).clamp(0.0, 1.0),
    };
    let rounded = (value * 10_000.0).round() / 10_000.0;
    format!("{rounded}")
}

fn seed(tx: &Transaction<'_>, args: &Args, prefix: &str) -> anyhow::Result<Counts> {
    let (existing_runs, newest_created): (i64, Option<i64>) = tx
        .query_row("SELECT COUNT(*), MAX(created_ms) FROM runs", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .context("reading the existing history")?;
    if existing_runs > 0 {
        eprintln!("note: the history already has {existing_runs} run(s); adding after them");
    }
    // Appending again with the same --seed gives new rows, not a copy of the last batch.
    let rng = &mut Rng(args.seed ^ (existing_runs as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));

    // The newest seeded run is created two hours ago, so even the longest (about an hour)
    // has ended by now.
    let last = now_ms() - 2 * 3_600_000;
    let span_ms = i64::from(args.days) * 86_400_000;
    let first = (last - span_ms).max(newest_created.map_or(i64::MIN, |t| t + 1));
    let runs = i64::try_from(args.runs).context("--runs is too large")?;
    // At least one millisecond apart, so every run id `<prefix>_<created>` is distinct.
    let gap = ((last - first) / runs.max(1)).max(1);

    let mut insert_run = tx
        .prepare(
            "INSERT INTO runs (run_id, script, arguments, target, runconfig, status, created_ms, started_ms,
                               ended_ms, exit_code, error, git_commit, artifacts, driver_pid, driver_start)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .context("preparing the run insert")?;
    let mut insert_metric = tx
        .prepare("INSERT INTO metrics (run_number, name, step, value, time_ms) VALUES (?1, ?2, ?3, ?4, ?5)")
        .context("preparing the metric insert")?;

    let per_run = args.metrics.checked_div(args.runs).unwrap_or(0);
    let extra = args.metrics.checked_rem(args.runs).unwrap_or(0);
    let mut commits: Vec<String> = (0..40)
        .map(|_| format!("{:016x}{:016x}{:08x}", rng.next(), rng.next(), rng.next() as u32))
        .collect();
    commits.sort();
    let mut counts = Counts { runs: 0, metrics: 0 };

    for i in 0..args.runs {
        let created = first + i as i64 * gap + rng.below(gap as u64) as i64;
        let target = if rng.below(10) < 6 { "local" } else { "docker" };
        let prepare_ms = if target == "docker" {
            1_500 + rng.below(20_000)
        } else {
            150 + rng.below(600)
        } as i64;
        let started = created + prepare_ms;
        // Mostly short runs, some long ones: 1 s to about an hour.
        let duration = (1_000.0 * (8.2 * rng.unit()).exp()) as i64;
        let ended = started + duration;
        let (status, exit_code, error) = match rng.below(100) {
            0..=79 => (RunStatus::Completed, Some(0), None),
            80..=94 => {
                let code = *rng.pick(&[1, 1, 1, 2, 137]);
                (
                    RunStatus::Failed,
                    Some(code),
                    Some(format!("the script exited with code {code}")),
                )
            }
            _ => (RunStatus::Canceled, Some(130), None),
        };
        let git_commit = (rng.below(10) < 7).then(|| rng.pick(&commits).clone());
        let artifacts = if status == RunStatus::Completed && rng.below(10) < 3 {
            r#"["outputs/model.pkl"]"#
        } else {
            "[]"
        };
        insert_run
            .execute(params![
                format!("{prefix}_{created}"),
                rng.pick(SCRIPTS),
                arguments(rng),
                target,
                status.as_str(),
                created,
                started,
                ended,
                exit_code,
                error,
                git_commit,
                artifacts,
                1_000 + rng.below(60_000) as i64,
                rng.below(1 << 40) as i64,
            ])
            .with_context(|| format!("inserting run {} of {}", i + 1, args.runs))?;
        let run_number = tx.last_insert_rowid();
        counts.runs += 1;

        let points = per_run + u64::from(i < extra);
        if points == 0 {
            continue;
        }
        // Names in sorted order and steps ascending: the rows arrive in primary-key order.
        let names = rng.pick(METRIC_SETS);
        let names = &names[..(points as usize).min(names.len())];
        let k = names.len() as u64;
        for (n, name) in names.iter().enumerate() {
            let steps = points / k + u64::from((n as u64) < points % k);
            for step in 0..steps {
                let time = started + (duration * (step as i64 + 1)) / (steps as i64 + 1);
                insert_metric
                    .execute(params![
                        run_number,
                        name,
                        step as i64,
                        metric_value(name, step, steps, rng),
                        time
                    ])
                    .with_context(|| format!("inserting a metric of run {run_number}"))?;
                counts.metrics += 1;
            }
        }
    }
    Ok(counts)
}

fn prepare_project(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.exists() && !dir.is_dir() {
        bail!("--project {}: not a folder", dir.display());
    }
    let config = dir.join(CONFIG_DIR);
    std::fs::create_dir_all(&config).with_context(|| format!("creating {}", config.display()))?;
    std::fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))
}

fn run(args: &Args) -> anyhow::Result<()> {
    if args.metrics > 0 && args.runs == 0 {
        bail!(
            "--metrics {} needs at least one run to hang them on (--runs 0)",
            args.metrics
        );
    }
    if args.runs > 0 && args.metrics.div_ceil(args.runs) > MAX_POINTS_PER_RUN {
        bail!(
            "--metrics {} over --runs {} is more than {MAX_POINTS_PER_RUN} points per run; add runs or lower --metrics",
            args.metrics,
            args.runs
        );
    }
    let root = prepare_project(&args.project)?;
    let prefix = Project::at(&root).run_id_prefix();
    let started = Instant::now();

    let mut store = HistoryStore::open(&root.join(XP_DIR))?;
    let db = root.join(XP_DIR).join("history.db");
    let conn = store.connection();
    // A bigger page cache keeps the bulk insert in memory until the commit.
    conn.execute_batch("PRAGMA cache_size = -262144;")
        .with_context(|| format!("configuring {}", db.display()))?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .with_context(|| format!("starting a transaction on {}", db.display()))?;
    let counts = seed(&tx, args, &prefix)?;
    tx.commit().with_context(|| format!("committing to {}", db.display()))?;
    let inserted = started.elapsed();
    // Fold the write-ahead log into the database so the first reader does not pay for it.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .with_context(|| format!("checkpointing {}", db.display()))?;
    let total = started.elapsed();

    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!(
        "seeded {} runs and {} metric points into {} in {:.2} s (insert {:.2} s, checkpoint {:.2} s; {:.1} MB on disk)",
        counts.runs,
        counts.metrics,
        db.display(),
        total.as_secs_f64(),
        inserted.as_secs_f64(),
        (total - inserted).as_secs_f64(),
        size as f64 / 1e6,
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xp-seed-history: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
