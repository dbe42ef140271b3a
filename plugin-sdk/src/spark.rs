//! `Framework: PySpark` the same way on every target: which program runs the script, and the
//! one `spark-submit` command line that applies `spark_dependencies.yml` (its configuration as
//! `--conf`, its packages and repositories), so no plugin keeps a copy of its own.

use std::collections::BTreeMap;

use xp_plugin_api::{Dependencies, RunRequest, Target};

/// The run configuration's `Framework` value that runs scripts with spark-submit.
pub const PYSPARK: &str = "PySpark";

/// The target setting naming spark-submit, and its default.
pub const SPARK_SUBMIT_SETTING: &str = "sparkSubmitLocation";
pub const DEFAULT_SPARK_SUBMIT: &str = "spark-submit";

/// The target setting naming the interpreter, and its default.
pub const PYTHON_SETTING: &str = "pythonLocation";
pub const DEFAULT_PYTHON: &str = "python3";

/// Whether a run's `Framework` asks for spark-submit.
pub fn is_pyspark(framework: &str) -> bool {
    framework.eq_ignore_ascii_case(PYSPARK)
}

/// The program a target's settings name to run the script, and the setting that named it (for
/// messages that say what to change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptProgram {
    /// As configured: a name on PATH or a path (the default when the setting is unset or blank).
    pub program: String,
    /// `sparkSubmitLocation` or `pythonLocation`.
    pub setting: &'static str,
}

impl ScriptProgram {
    /// Whether the program is spark-submit (the framework is PySpark).
    pub fn is_spark_submit(&self) -> bool {
        self.setting == SPARK_SUBMIT_SETTING
    }
}

/// Which program runs the script: for PySpark `sparkSubmitLocation` (default `spark-submit`),
/// otherwise `pythonLocation` (default `python3`).
pub fn script_program(target: &Target, framework: &str) -> ScriptProgram {
    let (setting, default) = if is_pyspark(framework) {
        (SPARK_SUBMIT_SETTING, DEFAULT_SPARK_SUBMIT)
    } else {
        (PYTHON_SETTING, DEFAULT_PYTHON)
    };
    let program = target
        .setting_str(setting)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or(default)
        .to_owned();
    ScriptProgram { program, setting }
}

/// A `spark-submit` command line. Options come first (`--master`, `--deploy-mode`, then
/// `--conf` for every setting in key order, `--packages`, `--repositories`, any extra
/// options), then the script and its arguments:
///
/// ```
/// use xp_plugin_api::Dependencies;
/// use xp_plugin_sdk::spark::Submit;
///
/// let mut dependencies = Dependencies::default();
/// dependencies.spark_configuration.insert("spark.executor.memory".into(), "2g".into());
/// dependencies.spark_packages.push("org.example:lib:1.0".into());
/// let argv = Submit::new("spark-submit", &dependencies)
///     .default_name("xp-run_1")
///     .argv(&["train.py".to_owned(), "--epochs".to_owned(), "3".to_owned()]);
/// assert_eq!(
///     argv,
///     [
///         "spark-submit",
///         "--conf", "spark.app.name=xp-run_1",
///         "--conf", "spark.executor.memory=2g",
///         "--packages", "org.example:lib:1.0",
///         "train.py", "--epochs", "3",
///     ]
/// );
/// ```
#[derive(Debug, Clone)]
pub struct Submit {
    program: String,
    master: Option<String>,
    deploy_mode: Option<String>,
    configuration: BTreeMap<String, String>,
    defaults: BTreeMap<String, String>,
    packages: Vec<String>,
    repositories: Vec<String>,
    options: Vec<String>,
}

impl Submit {
    /// spark-submit (`program`) with the run's `spark_dependencies.yml` applied.
    pub fn new(program: impl Into<String>, dependencies: &Dependencies) -> Submit {
        Submit {
            program: program.into(),
            master: None,
            deploy_mode: None,
            configuration: dependencies.spark_configuration.clone(),
            defaults: BTreeMap::new(),
            packages: dependencies.spark_packages.clone(),
            repositories: dependencies.spark_repositories.clone(),
            options: Vec::new(),
        }
    }

    /// `--master MASTER`, the target's (spark-submit prefers it to a `spark.master` in the
    /// configuration).
    pub fn master(mut self, master: impl Into<String>) -> Submit {
        self.master = Some(master.into());
        self
    }

    /// `--deploy-mode MODE`.
    pub fn deploy_mode(mut self, mode: impl Into<String>) -> Submit {
        self.deploy_mode = Some(mode.into());
        self
    }

    /// A setting the plugin needs (e.g. the Python the executors use): it replaces the
    /// configuration's value for the same key.
    pub fn conf(mut self, key: impl Into<String>, value: impl Into<String>) -> Submit {
        self.configuration.insert(key.into(), value.into());
        self
    }

    /// A setting that applies only when the configuration (and [`Submit::conf`]) set none.
    pub fn default_conf(mut self, key: impl Into<String>, value: impl Into<String>) -> Submit {
        self.defaults.insert(key.into(), value.into());
        self
    }

    /// `spark.app.name` when the configuration sets none.
    pub fn default_name(self, name: impl Into<String>) -> Submit {
        self.default_conf("spark.app.name", name)
    }

    /// A further option and its value (e.g. `--archives env.tar.gz#env`), after the others.
    pub fn option(mut self, flag: impl Into<String>, value: impl Into<String>) -> Submit {
        self.options.extend([flag.into(), value.into()]);
        self
    }

    /// The command line: spark-submit, its options, then `arguments` (the script first).
    pub fn argv(self, arguments: &[String]) -> Vec<String> {
        let mut configuration = self.defaults;
        configuration.extend(self.configuration);
        let mut argv = vec![self.program];
        if let Some(master) = self.master {
            argv.extend(["--master".into(), master]);
        }
        if let Some(mode) = self.deploy_mode {
            argv.extend(["--deploy-mode".into(), mode]);
        }
        for (key, value) in configuration {
            argv.extend(["--conf".into(), format!("{key}={value}")]);
        }
        if !self.packages.is_empty() {
            argv.extend(["--packages".into(), self.packages.join(",")]);
        }
        if !self.repositories.is_empty() {
            argv.extend(["--repositories".into(), self.repositories.join(",")]);
        }
        argv.extend(self.options);
        argv.extend(arguments.iter().cloned());
        argv
    }
}

/// The default application name of a run: `xp-<run id>`, which the cluster's UI lists.
pub fn app_name(run_id: &str) -> String {
    format!("xp-{run_id}")
}

/// The spark-submit of a run: its dependencies, and `xp-<run id>` as the default name.
pub fn run_submit(program: impl Into<String>, request: &RunRequest) -> Submit {
    Submit::new(program, &request.dependencies).default_name(app_name(&request.run_id))
}

/// The command line that runs a run's script with `program` (what [`script_program`] names,
/// or where the target found it): for PySpark [`run_submit`], otherwise the program and the
/// arguments.
pub fn run_argv(program: impl Into<String>, request: &RunRequest) -> Vec<String> {
    if is_pyspark(&request.framework) {
        run_submit(program, request).argv(&request.arguments)
    } else {
        std::iter::once(program.into())
            .chain(request.arguments.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn target(settings: serde_json::Value) -> Target {
        Target {
            name: "t".into(),
            settings: serde_json::from_value(settings).unwrap(),
            ..Target::default()
        }
    }

    #[test]
    fn the_dependencies_become_sorted_confs_packages_and_repositories() {
        let mut dependencies = Dependencies::default();
        dependencies.spark_configuration.insert("spark.b".into(), "2".into());
        dependencies.spark_configuration.insert("spark.a".into(), "x y".into());
        dependencies.spark_packages = strings(&["g:a:1", "g:b:2"]);
        dependencies.spark_repositories = strings(&["https://r1", "https://r2"]);
        let argv = Submit::new("/opt/spark/bin/spark-submit", &dependencies).argv(&strings(&["job.py", "--n", "3"]));
        assert_eq!(
            argv,
            strings(&[
                "/opt/spark/bin/spark-submit",
                "--conf",
                "spark.a=x y",
                "--conf",
                "spark.b=2",
                "--packages",
                "g:a:1,g:b:2",
                "--repositories",
                "https://r1,https://r2",
                "job.py",
                "--n",
                "3",
            ])
        );
    }

    #[test]
    fn no_dependencies_is_spark_submit_and_the_script() {
        let argv = Submit::new("spark-submit", &Dependencies::default()).argv(&strings(&["job.py"]));
        assert_eq!(argv, strings(&["spark-submit", "job.py"]));
    }

    #[test]
    fn the_default_name_applies_only_without_one_in_the_configuration() {
        let mut dependencies = Dependencies::default();
        let argv = Submit::new("s", &dependencies).default_name("xp-r1").argv(&[]);
        assert_eq!(argv, strings(&["s", "--conf", "spark.app.name=xp-r1"]));

        dependencies
            .spark_configuration
            .insert("spark.app.name".into(), "mine".into());
        let argv = Submit::new("s", &dependencies)
            .default_name("xp-r1")
            .default_conf("spark.jars.ivy", "/tmp/ivy")
            .argv(&[]);
        assert_eq!(
            argv,
            strings(&[
                "s",
                "--conf",
                "spark.app.name=mine",
                "--conf",
                "spark.jars.ivy=/tmp/ivy"
            ])
        );
    }

    #[test]
    fn master_mode_plugin_settings_and_options_keep_their_places() {
        let mut dependencies = Dependencies::default();
        dependencies
            .spark_configuration
            .insert("spark.pyspark.python".into(), "user".into());
        dependencies.spark_configuration.insert("spark.z".into(), "1".into());
        let argv = Submit::new("s", &dependencies)
            .master("yarn")
            .deploy_mode("client")
            .conf("spark.pyspark.python", "./env/bin/python")
            .option("--archives", "env.tgz#env")
            .argv(&strings(&["job.py"]));
        assert_eq!(
            argv,
            strings(&[
                "s",
                "--master",
                "yarn",
                "--deploy-mode",
                "client",
                "--conf",
                "spark.pyspark.python=./env/bin/python",
                "--conf",
                "spark.z=1",
                "--archives",
                "env.tgz#env",
                "job.py",
            ])
        );
    }

    #[test]
    fn a_run_command_line_depends_on_the_framework() {
        let mut request = RunRequest {
            run_id: "p_1".into(),
            arguments: strings(&["job.py", "a"]),
            ..RunRequest::default()
        };
        request
            .dependencies
            .spark_configuration
            .insert("spark.master".into(), "local[1]".into());
        request.framework = "Python".into();
        assert_eq!(run_argv("python3", &request), strings(&["python3", "job.py", "a"]));
        request.framework = "PySpark".into();
        assert_eq!(
            run_argv("spark-submit", &request),
            strings(&[
                "spark-submit",
                "--conf",
                "spark.app.name=xp-p_1",
                "--conf",
                "spark.master=local[1]",
                "job.py",
                "a"
            ])
        );
    }

    #[test]
    fn pyspark_runs_spark_submit_location_and_python_runs_python_location() {
        let plain = target(json!({}));
        assert_eq!(
            script_program(&plain, "PySpark"),
            ScriptProgram {
                program: "spark-submit".into(),
                setting: "sparkSubmitLocation"
            }
        );
        assert_eq!(
            script_program(&plain, "Python"),
            ScriptProgram {
                program: "python3".into(),
                setting: "pythonLocation"
            }
        );
        assert_eq!(script_program(&plain, "").program, "python3");

        let set = target(json!({"sparkSubmitLocation": "/opt/spark/bin/spark-submit", "pythonLocation": " "}));
        let spark = script_program(&set, "pyspark");
        assert_eq!(spark.program, "/opt/spark/bin/spark-submit");
        assert!(spark.is_spark_submit());
        assert_eq!(
            script_program(&set, "Python").program,
            "python3",
            "a blank setting means the default"
        );
    }
}
