//! Making pip's failure say which entry of the conda file failed.

use xp_plugin_api::PluginFailure;
use xp_plugin_sdk::packages::PackagePlan;

use crate::environment::{dependency_file_name, Spec};

/// How many of pip's last error lines a failure message quotes.
pub const PIP_ERROR_LINES: usize = 8;

/// The entries pip blames, named as the conda file lists them (the SDK reads pip's own
/// sentences). pip is all this build runs, so when it names no entry and there is only one,
/// that one failed.
fn culprits(plan: &PackagePlan, errors: &[String], last_stdout: &[String]) -> Option<String> {
    let output: Vec<String> = errors.iter().chain(last_stdout).cloned().collect();
    plan.pip_failure(&output).or_else(|| match plan.pip.as_slice() {
        [only] => Some(format!("pip could not install {}", only.describe(&plan.file))),
        _ => None,
    })
}

pub(crate) fn pip_failure(
    spec: &Spec<'_>,
    plan: &PackagePlan,
    exit_code: i32,
    errors: &[String],
    last_stdout: Vec<String>,
) -> PluginFailure {
    let file = dependency_file_name(spec.dependencies);
    let what =
        culprits(plan, errors, &last_stdout).unwrap_or_else(|| format!("pip could not install the packages of {file}"));
    let tail: Vec<String> = if errors.is_empty() {
        last_stdout
    } else {
        errors.to_vec()
    };
    let tail = &tail[tail.len().saturating_sub(PIP_ERROR_LINES)..];
    PluginFailure::new(format!(
        "{what}; pip exited with code {exit_code}:\n  {}\nFix {file} (paths in its pip list are relative to the project {}) and submit again; nothing was cached.",
        tail.join("\n  "),
        spec.project_dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xp_plugin_api::Dependencies;

    fn plan(conda: &[&str], pip: &[&str]) -> PackagePlan {
        let dependencies = Dependencies {
            conda: Some("aml_config/conda_dependencies.yml".into()),
            conda_packages: conda.iter().map(|s| s.to_string()).collect(),
            pip_packages: pip.iter().map(|s| s.to_string()).collect(),
            ..Dependencies::default()
        };
        PackagePlan::new(&dependencies, std::path::Path::new("/"), false).unwrap()
    }

    fn lines(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_the_failing_entry() {
        let both = plan(
            &["pytorch"],
            &["./wheels/missing-0.1-py3-none-any.whl", "Scikit_Learn>=1"],
        );
        let errors = lines(&[
            "WARNING: Requirement './wheels/missing-0.1-py3-none-any.whl' looks like a filename, but the file does not exist",
            "ERROR: Could not install packages due to an OSError: [Errno 2] No such file or directory",
        ]);
        assert_eq!(
            culprits(&both, &errors, &[]).unwrap(),
            "pip could not install `./wheels/missing-0.1-py3-none-any.whl` (line 1 of the pip list of aml_config/conda_dependencies.yml)"
        );
        let errors = lines(&["ERROR: No matching distribution found for torch"]);
        assert_eq!(
            culprits(&both, &errors, &[]).unwrap(),
            "pip could not install `pytorch` (a conda package of aml_config/conda_dependencies.yml, installed with pip as `torch`)"
        );
        assert_eq!(culprits(&both, &lines(&["ERROR: disk full"]), &[]), None);
        let one = plan(&[], &["numpy"]);
        assert!(
            culprits(&one, &lines(&["ERROR: disk full"]), &[])
                .unwrap()
                .contains("`numpy` (line 1"),
            "a lone entry is the one that failed"
        );
    }
}
