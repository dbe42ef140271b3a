//! The `cluster` executor: runs a PySpark script with `spark-submit` on a Spark cluster's head
//! node, reached over SSH like the remote target (same credentials, known_hosts, incremental
//! snapshot transfer). The driver runs on the head node (client mode), so its output streams
//! live and the `outputs/` it writes come back; the Python packages of the conda file reach
//! the driver and the executors as a virtual environment built on the head node, cached by
//! the hash of its contents, and shipped with the job as an archive.

mod environment;

use xp_plugin_api::{
    AttachReply, AttachRequest, Events, Executor, PluginDescription, PluginFailure, PrepareReply, PrepareRequest,
    ReapReply, ReapRequest, RunOutcome, RunRequest, RunStatus, SettingKind, SettingSpec, Settings, Target,
};
use xp_plugin_sdk::spark;
use xp_sshkit::lifecycle::{DetachedRun, Start};
use xp_sshkit::quote::quote;
use xp_sshkit::target::{self, Login};
use xp_sshkit::Connection;

const DEFAULT_MASTER: &str = "yarn";

/// What the driver prints when the cluster gives the job nothing to run on.
const NO_RESOURCES: &str = "Initial job has not accepted any resources";

#[derive(Default)]
struct ClusterExecutor;

fn master(target: &Target) -> &str {
    target
        .setting_str("sparkMaster")
        .filter(|m| !m.trim().is_empty())
        .unwrap_or(DEFAULT_MASTER)
}

fn spark_submit(target: &Target) -> String {
    spark::script_program(target, spark::PYSPARK).program
}

fn check_deploy_mode(target: &Target) -> Result<(), PluginFailure> {
    if let Some(mode) = target.setting_str("yarnDeployMode") {
        if !mode.eq_ignore_ascii_case("client") {
            return Err(PluginFailure::new(format!(
                "aml_config/{}.compute: yarnDeployMode {mode} is not supported: xp runs the driver on the head node (client mode) to stream its output and bring back outputs/; set yarnDeployMode: client",
                target.name
            )));
        }
    }
    Ok(())
}

/// How long a head node that passed its checks (spark-submit there, the master answering)
/// is trusted without asking again.
const CHECKS_KEPT_FOR: std::time::Duration = std::time::Duration::from_secs(600);

/// The head-node checks of a submit, remembered per target in the plugin's state folder so
/// that resubmits skip the master probe (a Python start on the head node).
struct HeadNodeChecks {
    stamp: std::path::PathBuf,
}

impl HeadNodeChecks {
    fn of(request: &RunRequest) -> HeadNodeChecks {
        use sha2::{Digest, Sha256};
        let target = &request.context.target;
        let key = format!(
            "{}\n{}\n{}\n{}",
            target.setting_str("address").unwrap_or(""),
            target.setting_str("username").unwrap_or(""),
            spark_submit(target),
            master(target)
        );
        let hash: String = Sha256::digest(key.as_bytes())
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        HeadNodeChecks {
            stamp: request.context.state_dir.join("checked").join(hash),
        }
    }

    fn fresh(&self) -> bool {
        std::fs::metadata(&self.stamp)
            .and_then(|m| m.modified())
            .is_ok_and(|at| at.elapsed().is_ok_and(|age| age < CHECKS_KEPT_FOR))
    }

    /// Shell commands for the submit's first command on the head node: spark-submit must be
    /// there, and (unless checked lately) a standalone master must answer.
    fn preflight(&self, connection: &Connection, target: &Target) -> String {
        let submit = spark_submit(target);
        let mut lines = vec![format!(
            "command -v {submit} >/dev/null 2>&1 || {{ echo {message} >&2; exit 3; }}",
            submit = quote(&submit),
            message = quote(&format!(
                "sparkSubmitLocation '{submit}' does not run on {} (aml_config/{}.compute): not found",
                connection.address, target.name
            )),
        )];
        if !self.fresh() {
            lines.extend(master_probes(connection, target));
        }
        lines.join("\n")
    }

    fn passed(&self) {
        if let Some(folder) = self.stamp.parent() {
            let _ = std::fs::create_dir_all(folder);
        }
        let _ = std::fs::write(&self.stamp, b"");
    }
}

/// Shell lines that fail with exit code 3 and a message when a standalone master does not
/// answer from the head node.
fn master_probes(connection: &Connection, target: &Target) -> Vec<String> {
    let master = master(target);
    let Some(rest) = master.strip_prefix("spark://") else {
        return Vec::new();
    };
    rest.split(',')
        .map(|endpoint| {
            let (host, port) = endpoint.rsplit_once(':').unwrap_or((endpoint, "7077"));
            format!(
                "python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)' {} {} >/dev/null 2>&1 || (exec 3<>/dev/tcp/{host}/{port}) >/dev/null 2>&1 || {{ echo {message} >&2; exit 3; }}",
                quote(host),
                quote(port),
                host = host.replace(|c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-', ""),
                port = port.replace(|c: char| !c.is_ascii_digit(), ""),
                message = quote(&format!(
                    "the Spark master {master} is unreachable from the head node {}: nothing answers at {endpoint}; is the master running and sparkMaster right?",
                    connection.address
                )),
            )
        })
        .collect()
}

/// Checks spark-submit, the deploy mode, and (for standalone masters) that the master answers
/// from the head node. Returns spark-submit's version line.
/// With `full`, also runs spark-submit to learn its version.
fn check_cluster(connection: &Connection, target: &Target, full: bool) -> Result<String, PluginFailure> {
    check_deploy_mode(target)?;
    let submit = spark_submit(target);
    // Asking spark-submit for its version starts a JVM (seconds): done at attach and prepare;
    // a submit only checks that the program is there.
    let probe = if full {
        format!("{} --version 2>&1", quote(&submit))
    } else {
        format!("command -v {} 2>&1", quote(&submit))
    };
    let version = connection.exec(&probe, None)?;
    if version.status != 0 {
        return Err(PluginFailure::new(format!(
            "sparkSubmitLocation '{submit}' does not run on {} (aml_config/{}.compute): {}",
            connection.address,
            target.name,
            String::from_utf8_lossy(&version.stdout)
                .lines()
                .last()
                .unwrap_or("not found")
                .trim()
        )));
    }
    // The banner has a line like `   /___/ .__/\_,_/_/ /_/\_\   version 3.5.9`.
    let version_line = String::from_utf8_lossy(&version.stdout)
        .lines()
        .find_map(|line| line.split("version ").nth(1).map(|v| format!("Spark {}", v.trim())))
        .unwrap_or_default();
    let master = master(target);
    if let Some(rest) = master.strip_prefix("spark://") {
        for endpoint in rest.split(',') {
            let (host, port) = endpoint.rsplit_once(':').unwrap_or((endpoint, "7077"));
            let probe = format!(
                "python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)' {} {} 2>&1 || (exec 3<>/dev/tcp/{host}/{port}) 2>&1",
                quote(host),
                quote(port),
                host = host.replace(|c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-', ""),
                port = port.replace(|c: char| !c.is_ascii_digit(), ""),
            );
            let reached = connection.exec(&probe, None)?;
            if reached.status != 0 {
                return Err(PluginFailure::new(format!(
                    "the Spark master {master} is unreachable from the head node {}: nothing answers at {endpoint}; is the master running and sparkMaster right?",
                    connection.address
                )));
            }
        }
    }
    Ok(version_line)
}

impl Executor for ClusterExecutor {
    fn describe(&self) -> PluginDescription {
        target::login_settings().into_iter().fold(
            PluginDescription::new("cluster", env!("CARGO_PKG_VERSION"), &["cluster"]),
            PluginDescription::setting,
        )
        .setting(
            SettingSpec::new(
                "sparkMaster",
                SettingKind::String,
                "the cluster's master as spark-submit takes it: spark://HOST:PORT, yarn, or local[*]",
            )
            .default_value(DEFAULT_MASTER),
        )
        .setting(xp_plugin_sdk::settings::spark_submit_location())
        .setting(
            SettingSpec::new(
                "yarnDeployMode",
                SettingKind::String,
                "where the driver runs: client (on the head node, so its output streams and outputs/ come back) is the one xp supports",
            )
            .default_value("client")
            .allowed(["client"]),
        )
        .setting(xp_plugin_sdk::settings::python_location())
        .setting(xp_plugin_sdk::settings::user_managed_environment())
        .setting(xp_plugin_sdk::settings::wheelhouse())
    }

    fn attach(&self, request: AttachRequest, events: &Events<'_>) -> Result<AttachReply, PluginFailure> {
        let mut runconfig = Settings::new();
        runconfig.insert("Framework".into(), "PySpark".into());
        let defaults = [
            ("sparkMaster", DEFAULT_MASTER),
            ("sparkSubmitLocation", "spark-submit"),
            ("yarnDeployMode", "client"),
        ];
        target::attach(&request, &defaults, runconfig, events, |connection, target| {
            let version = check_cluster(connection, target, true)?;
            Ok(format!("{version}; master {}", master(target)))
        })
    }

    fn prepare(&self, request: PrepareRequest, events: &Events<'_>) -> Result<PrepareReply, PluginFailure> {
        let login = Login::for_context(&request.context)?;
        let connection = login.connect(Some(events))?;
        let version = check_cluster(&connection, &request.context.target, true)?;
        let built = environment::ensure(
            &connection,
            &request.context.target,
            &request.dependencies,
            &request.context.project_dir,
            events,
        )?;
        let mut messages = vec![format!("{version}; master {} answers", master(&request.context.target))];
        let cached = match &built {
            Some(env) => {
                messages.push(env.summary());
                env.cached
            }
            None => {
                messages.push("no pip packages to ship: the cluster's Python is used as it is".into());
                true
            }
        };
        Ok(PrepareReply::new(cached).messages(messages))
    }

    fn run(&self, request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
        events.status(RunStatus::Preparing);
        let target = &request.context.target;
        let login = Login::for_context(&request.context)?;
        let connection = login.connect(Some(events))?;
        check_deploy_mode(target)?;
        let checked = HeadNodeChecks::of(&request);
        let preflight = checked.preflight(&connection, target);
        let python_environment = environment::ensure(
            &connection,
            target,
            &request.dependencies,
            &request.context.project_dir,
            events,
        )?;

        let master = master(target);
        let mut submit = spark::run_submit(spark_submit(target), &request).master(master);
        if master == "yarn" {
            submit = submit.deploy_mode("client");
        }
        if let Some(env) = &python_environment {
            // The driver uses the environment in place; executors unpack the shipped archive.
            // (Spark settings rather than PYSPARK_* variables: spark-env.sh may set those.)
            submit = submit
                .conf("spark.pyspark.driver.python", format!("{}/bin/python", env.path))
                .conf("spark.pyspark.python", "./xpenv/bin/python")
                .option("--archives", format!("{}#xpenv", env.archive));
        }
        let command = target::script_command(&request, submit.argv(&request.arguments));
        let watch = |line: &str| {
            line.contains(NO_RESOURCES).then(|| {
            format!(
                "no free workers: the cluster at {} gave the job no executors ({NO_RESOURCES}); check that workers are alive and have free cores and memory for the job's settings",
                master
            )
        })
        };
        DetachedRun {
            login: &login,
            request: &request,
            on_cancel: None,
            after: None,
            watch: &watch,
        }
        .run(
            connection,
            Start::WithSnapshot {
                preflight: &preflight,
                command: &command,
            },
            || checked.passed(),
            events,
        )
    }

    /// The driver (spark-submit in client mode) runs detached on the head node and outlives a
    /// vanished xp: ending its group ends the Spark application.
    fn reap(&self, request: ReapRequest, events: &Events<'_>) -> Result<ReapReply, PluginFailure> {
        target::reap(&request, None, events)
    }
}

xp_plugin_api::export_plugin!(ClusterExecutor);

#[cfg(test)]
mod tests;
