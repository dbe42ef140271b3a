use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run machine-learning experiments on any compute target and remember every run.
#[derive(Debug, Parser)]
#[command(name = "xp", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// The project folder (default: the nearest folder with aml_config/, from here upwards).
    #[arg(long, global = true, value_name = "DIR")]
    pub project: Option<PathBuf>,

    /// Print only the script's output and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a folder an xp project: aml_config/ with a local target and dependency files.
    Init(InitArgs),
    /// Short for `xp experiment submit`.
    Submit(SubmitArgs),
    /// Run scripts on compute targets.
    Experiment {
        #[command(subcommand)]
        command: ExperimentCommand,
    },
    /// Attach, list, show and detach compute targets (aml_config/*.compute).
    #[command(alias = "target")]
    Computetarget {
        #[command(subcommand)]
        command: ComputeTargetCommand,
    },
    /// Create, list, show and delete run configurations (aml_config/*.runconfig).
    #[command(alias = "runconfig")]
    Runconfiguration {
        #[command(subcommand)]
        command: RunConfigCommand,
    },
    /// The run history: list runs, show one.
    History {
        #[command(subcommand)]
        command: HistoryCommand,
    },
    /// Executor plugins found on the search path.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Named links to run artifacts (assets/NAME.link), made by `xp history promote`.
    Asset {
        #[command(subcommand)]
        command: AssetCommand,
    },
    /// Serve the run history in a browser: runs, live logs and metric charts, compare.
    Ui(UiArgs),
    /// Drive a detached run (started by `submit --detach`; not for direct use).
    #[command(hide = true)]
    Supervise { run_dir: PathBuf },
}

#[derive(Debug, Args)]
pub struct UiArgs {
    /// The port to listen on (0: any free one).
    #[arg(long, default_value_t = 5151)]
    pub port: u16,
    /// The address to listen on. Any other than 127.0.0.1 or ::1 makes every request need
    /// the token printed with the URL.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub host: String,
}

#[derive(Debug, Subcommand)]
pub enum AssetCommand {
    /// List the project's assets.
    List(OutputArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder (default: the current one).
    pub dir: Option<PathBuf>,
    /// Overwrite files xp writes that already exist.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Run a script on the target of a run configuration, streaming its output.
    Submit(SubmitArgs),
    /// Build or check a target's environment ahead of a run.
    Prepare(PrepareArgs),
    /// Remove what a target built for this project (e.g. the docker target's images).
    Clean(PrepareArgs),
    /// Cancel a queued or running run: its target ends what it started.
    Cancel {
        /// Run id or run number.
        run: String,
    },
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The run configuration (aml_config/NAME.runconfig).
    #[arg(
        short = 'c',
        long = "run-configuration",
        default_value = "local",
        value_name = "NAME"
    )]
    pub runconfig: String,
    /// Run on this compute target instead of the run configuration's `Target`.
    #[arg(short, long, value_name = "TARGET")]
    pub target: Option<String>,
    /// The script, relative to the project.
    pub script: String,
    /// Print the run id and return at once; a supervisor process drives the run, which goes on
    /// after the terminal closes (follow it with `xp history logs RUN -f`).
    #[arg(short = 'a', long, visible_alias = "async")]
    pub detach: bool,
    /// Arguments for the script.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub arguments: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// The run configuration (aml_config/NAME.runconfig).
    #[arg(
        short = 'c',
        long = "run-configuration",
        default_value = "local",
        value_name = "NAME"
    )]
    pub runconfig: String,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum ComputeTargetCommand {
    /// Attach a compute target of any type a plugin serves; writes NAME.compute and NAME.runconfig.
    Attach(AttachArgs),
    /// List the project's compute targets.
    List(OutputArgs),
    /// Show a compute target's settings.
    Show {
        name: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Remove a compute target (NAME.compute, and NAME.runconfig when it runs on it).
    Detach { name: String },
    /// The settings a target type's plugin declares: what each expects, its default, its
    /// attach flag and what it means.
    Settings {
        /// The target type (local, docker, remote, ... or any type a plugin serves).
        #[arg(value_name = "TYPE")]
        target_type: String,
        /// Print a Markdown table (the README's tables are made with it).
        #[arg(long)]
        markdown: bool,
    },
}

/// `xp computetarget attach TYPE --name N ...`: read after the plugin serving TYPE is found,
/// since its flags come from the plugin's settings schema (`xp computetarget attach TYPE
/// --help` lists them).
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct AttachArgs {
    /// TYPE --name NAME [TYPE's flags] [--set KEY=VALUE]... [--force]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum RunConfigCommand {
    /// Create NAME.runconfig for a target.
    Create {
        name: String,
        /// The compute target it runs on.
        #[arg(long, short)]
        target: String,
        /// Python or PySpark.
        #[arg(long, default_value = "Python")]
        framework: String,
        /// Replace an existing run configuration.
        #[arg(long)]
        force: bool,
    },
    /// List the project's run configurations.
    List(OutputArgs),
    /// Show a run configuration.
    Show {
        name: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Delete a run configuration.
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// List runs, newest first.
    List(HistoryListArgs),
    /// Show one run: status, times, arguments, metrics, artifacts.
    Info {
        /// Run id or run number.
        run: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show the newest run.
    Last(OutputArgs),
    /// Print a run's output; with -f, follow it live until the run ends.
    Logs {
        /// Run id or run number.
        run: String,
        /// Keep printing new output until the run ends.
        #[arg(short, long)]
        follow: bool,
    },
    /// Runs side by side: arguments, metrics (last and best), status, duration, target.
    Compare {
        /// Two or more run ids or numbers.
        #[arg(num_args = 2.., required = true)]
        runs: Vec<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Every point of a run's metrics: step, value, time.
    Metrics {
        /// Run id or run number.
        run: String,
        /// Only this metric.
        name: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Copy a run's artifacts (all, or one file or folder) into a folder.
    Download {
        /// Run id or run number.
        run: String,
        /// Only this artifact (e.g. outputs/model.pkl) or folder (outputs/plots).
        #[arg(long)]
        artifact: Option<String>,
        /// Destination folder.
        #[arg(short = 'd', long = "directory")]
        dir: PathBuf,
        /// Replace files that exist in the destination.
        #[arg(long)]
        overwrite: bool,
    },
    /// Give a run's artifact a name: writes assets/NAME.link pointing at it.
    Promote {
        /// Run id or run number.
        run: String,
        /// The artifact, e.g. outputs/model.pkl.
        #[arg(long = "artifact-path")]
        artifact_path: String,
        /// The asset's name.
        #[arg(long, short)]
        name: String,
        /// Replace an asset of the same name.
        #[arg(long)]
        force: bool,
    },
    /// Delete runs with their logs and artifacts, and free the snapshot files no run needs.
    Delete {
        /// Run ids or numbers.
        runs: Vec<String>,
        /// Delete every run created longer ago than this (e.g. 30d, 12h, 90m).
        #[arg(long = "older-than", value_name = "AGE")]
        older_than: Option<String>,
        /// Only free the snapshot files no run references (with no runs named).
        #[arg(long)]
        prune: bool,
    },
    /// What changed in the code between two runs: files added, removed and changed, with a
    /// unified diff of each changed text file.
    Diff {
        /// The older run (id or number).
        from: String,
        /// The newer run (id or number).
        to: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Write a run's exact files (its snapshot: contents, modes, links) into a folder.
    Restore {
        /// Run id or run number.
        run: String,
        /// Destination folder: made if missing, and it must be empty.
        #[arg(short = 'd', long = "directory")]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct HistoryListArgs {
    /// Only runs with this status (Queued, Preparing, Running, Completed, Failed, Canceled).
    #[arg(long, short)]
    pub status: Option<String>,
    /// Only runs on this compute target.
    #[arg(long, short)]
    pub target: Option<String>,
    /// At most this many runs (default 20; every run with --query).
    #[arg(long, short = 'n')]
    pub limit: Option<usize>,
    /// A JMESPath expression over the JSON list of runs, as `az ml history list --query`
    /// (e.g. "max_by([?status=='Completed'], &metrics.Accuracy).run_id"). Prints JSON.
    #[arg(long)]
    pub query: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Every plugin on the search path: which serves each target type, which are shadowed or
    /// cannot be used. Reads manifests only; --check also loads each library.
    List(PluginListArgs),
    /// Make a new plugin crate (out of tree) that builds, passes its own tests and loads as is.
    New(PluginNewArgs),
    /// Build a plugin crate (a folder, or a git repository URL) with cargo in release mode
    /// and install it into your plugins folder.
    Install(PluginInstallArgs),
    /// Remove a plugin installed with `xp plugin install`.
    Remove(PluginRemoveArgs),
}

#[derive(Debug, Args)]
pub struct PluginListArgs {
    /// Also load each compatible library, so abi_stable's layout check and the plugin's own
    /// description speak (this runs the libraries' code).
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct PluginNewArgs {
    /// The plugin's name (letters, digits, `-`): names the crate `xp-plugin-NAME`.
    pub name: String,
    /// The target type it serves (default: NAME).
    #[arg(long = "type", value_name = "TYPE")]
    pub target_type: Option<String>,
    /// Where to make the crate (default: ./NAME). Must not exist or be empty.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PluginInstallArgs {
    /// A plugin crate: a folder with Cargo.toml and plugin.toml, or a git repository URL
    /// (https://, ssh://, git@..., file://).
    pub source: String,
    /// Replace an installed plugin of the same name.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct PluginRemoveArgs {
    /// The plugin's name, as `xp plugin list` shows it.
    pub name: String,
}
