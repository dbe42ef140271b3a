use anyhow::{bail, Context};

use super::args::{OutputFormat, RunConfigCommand};
use super::output;
use super::CommandContext;
use crate::project::{templates, validate_name, Framework, RunConfig};

fn to_json(config: &RunConfig) -> serde_json::Value {
    serde_json::json!({
        "name": config.name,
        "file": config.path,
        "ArgumentVector": config.argument_vector,
        "Target": config.target,
        "EnvironmentVariables": config.environment_variables,
        "Framework": config.framework,
        "CondaDependenciesFile": config.conda_dependencies_file,
        "SparkDependenciesFile": config.spark_dependencies_file,
        "PrepareEnvironment": config.prepare_environment,
        "TrackedRun": config.tracked_run,
        "ignored": config.ignored_keys,
    })
}

pub fn run(context: &CommandContext, command: RunConfigCommand) -> anyhow::Result<i32> {
    let project = context.project()?;
    match command {
        RunConfigCommand::Create {
            name,
            target,
            framework,
            force,
        } => {
            validate_name(&name, "run configuration")?;
            let framework = match framework.to_ascii_lowercase().as_str() {
                "python" => Framework::Python,
                "pyspark" => Framework::PySpark,
                other => bail!("--framework {other}: expected Python or PySpark"),
            };
            // The target must exist: a run configuration pointing nowhere fails at submit.
            project.load_target(&target)?;
            let path = project.runconfig_path(&name);
            if path.exists() && !force {
                bail!(
                    "run configuration '{name}' already exists ({}); delete it first or pass --force",
                    path.display()
                );
            }
            let mut overrides = xp_plugin_api::Settings::new();
            overrides.insert("Framework".into(), framework.as_str().into());
            let text = templates::runconfig(&name, &target, &overrides);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            if !context.quiet {
                eprintln!("wrote {}", path.display());
            }
            Ok(0)
        }
        RunConfigCommand::List(format) => {
            let mut rows = Vec::new();
            let mut records = Vec::new();
            for name in project.runconfig_names() {
                match project.load_runconfig(&name) {
                    Ok(config) => {
                        rows.push(vec![
                            name.clone(),
                            config.target.clone().unwrap_or_default(),
                            config.framework.as_str().to_owned(),
                            String::new(),
                        ]);
                        records.push(to_json(&config));
                    }
                    Err(error) => {
                        rows.push(vec![name.clone(), String::new(), String::new(), error.to_string()]);
                        records.push(serde_json::json!({"name": name, "error": error.to_string()}));
                    }
                }
            }
            match format.output {
                OutputFormat::Table => output::print(&output::table(&["NAME", "TARGET", "FRAMEWORK", "PROBLEM"], rows)),
                OutputFormat::Json => output::print(&output::json(&records)),
            }
            Ok(0)
        }
        RunConfigCommand::Show { name, output: format } => {
            let config = project.load_runconfig(&name)?;
            let json = to_json(&config);
            match format.output {
                OutputFormat::Table => {
                    let rows = json
                        .as_object()
                        .expect("an object")
                        .iter()
                        .map(|(key, value)| vec![key.clone(), super::computetarget::display_value(value)])
                        .collect();
                    output::print(&output::table(&["KEY", "VALUE"], rows));
                }
                OutputFormat::Json => output::print(&output::json(&json)),
            }
            Ok(0)
        }
        RunConfigCommand::Delete { name } => {
            validate_name(&name, "run configuration")?;
            let path = project.runconfig_path(&name);
            if !path.exists() {
                project.load_runconfig(&name)?;
            }
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            if !context.quiet {
                eprintln!("removed {}", path.display());
            }
            Ok(0)
        }
    }
}
