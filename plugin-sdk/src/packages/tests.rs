use std::path::Path;

use serde_json::json;
use xp_plugin_api::{Dependencies, Target};

use super::*;

/// The conda file of the Workbench project in issue 14.
fn workbench() -> Dependencies {
    Dependencies {
        conda: Some("aml_config/conda_dependencies.yml".into()),
        conda_packages: vec!["python=3.5.2".into(), "scikit-learn".into(), "pandas".into()],
        pip_packages: vec!["joblib".into()],
        ..Dependencies::default()
    }
}

fn pip_of(plan: &PackagePlan) -> Vec<(&str, Origin)> {
    plan.pip.iter().map(|r| (r.pip.as_str(), r.origin)).collect()
}

#[test]
fn without_conda_pip_installs_the_conda_packages_then_the_pip_list() {
    let plan = PackagePlan::new(&workbench(), Path::new("/"), false).unwrap();
    assert_eq!(
        pip_of(&plan),
        [
            ("scikit-learn", Origin::Conda),
            ("pandas", Origin::Conda),
            ("joblib", Origin::Pip)
        ]
    );
    assert!(plan.conda.is_empty());
    assert_eq!(plan.python.as_deref(), Some("python=3.5.2"));
    assert!(!plan.is_empty());
    let said = plan.describe("the base image has no conda").join("\n");
    assert!(
        said.contains("aml_config/conda_dependencies.yml: the base image has no conda, so pip installs its conda packages, by their PyPI names: scikit-learn, pandas"),
        "{said}"
    );
    assert!(said.contains("pip installs its pip list: joblib"), "{said}");
    assert!(!said.contains("python"), "the interpreter is a note of its own: {said}");
}

#[test]
fn with_conda_conda_installs_its_packages_as_written() {
    let mut dependencies = workbench();
    dependencies.channels = vec!["conda-forge".into()];
    dependencies.conda_packages.push("pip=9".into());
    dependencies.conda_packages.push("numpy=1.11|1.12".into());
    dependencies.conda_packages.push("scipy[version='>=1']".into());
    let plan = PackagePlan::new(&dependencies, Path::new("/"), true).unwrap();
    assert_eq!(
        plan.conda,
        ["scikit-learn", "pandas", "numpy=1.11|1.12", "scipy[version='>=1']"],
        "conda reads its own syntax"
    );
    assert_eq!(pip_of(&plan), [("joblib", Origin::Pip)]);
    let said = plan.describe("unused").join("\n");
    assert!(
        said.contains(
            "conda installs scikit-learn, pandas, numpy=1.11|1.12, scipy[version='>=1'] (channels conda-forge)"
        ),
        "{said}"
    );
}

#[test]
fn renames_and_dropped_parts_are_told() {
    let dependencies = Dependencies {
        conda_packages: vec![
            "pytorch=0.4".into(),
            "conda-forge::py-xgboost".into(),
            "cudatoolkit=9".into(),
        ],
        ..Dependencies::default()
    };
    let plan = PackagePlan::new(&dependencies, Path::new("/"), false).unwrap();
    assert_eq!(
        pip_of(&plan),
        [("torch==0.4.*", Origin::Conda), ("xgboost", Origin::Conda)]
    );
    let said = plan.describe("the venv target has no conda").join("\n");
    assert!(said.contains("pytorch=0.4 as torch==0.4.*"), "{said}");
    assert!(said.contains("conda-forge::py-xgboost as xgboost"), "{said}");
    assert!(
        said.contains("not installed: cudatoolkit=9 (a library conda supplies"),
        "{said}"
    );
    assert!(said.contains("channel conda-forge"), "{said}");
    assert!(
        said.starts_with("the conda dependencies file: "),
        "without a file name the lines still say whose packages they are: {said}"
    );
}

#[test]
fn an_entry_pip_cannot_express_names_the_file_and_the_entry() {
    let mut dependencies = workbench();
    dependencies.conda_packages.push("numpy=1.11|1.12".into());
    let error = PackagePlan::new(&dependencies, Path::new("/"), false)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("aml_config/conda_dependencies.yml: conda package `numpy=1.11|1.12`"),
        "{error}"
    );
}

#[test]
fn the_python_entry_is_a_note_when_the_interpreter_differs() {
    let plan = PackagePlan::new(&workbench(), Path::new("/"), false).unwrap();
    let note = plan.python_note("3.11.2", "the image's python3").unwrap();
    assert_eq!(
        note,
        "note: aml_config/conda_dependencies.yml asks for python=3.5.2, and the image's python3 is Python 3.11.2: the script runs with that, and the packages are installed for it"
    );
    assert_eq!(plan.python_note("3.5.2", "x"), None);
    let no_python = PackagePlan::new(&Dependencies::default(), Path::new("/"), false).unwrap();
    assert_eq!(no_python.python_note("3.11.2", "x"), None);
    assert!(no_python.is_empty());
}

#[test]
fn local_files_of_the_pip_list_are_found_in_the_project() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("wheels")).unwrap();
    std::fs::write(dir.path().join("wheels/t-0.1-py3-none-any.whl"), "zip").unwrap();
    std::fs::write(dir.path().join("requests"), "a file named like a package").unwrap();
    let dependencies = Dependencies {
        pip_packages: vec![
            "./wheels/t-0.1-py3-none-any.whl".into(),
            "requests".into(),
            "./wheels/absent-0.1-py3-none-any.whl".into(),
            "https://example.org/x-1.0-py3-none-any.whl".into(),
            " ".into(),
        ],
        ..Dependencies::default()
    };
    let plan = PackagePlan::new(&dependencies, dir.path(), false).unwrap();
    let local: Vec<Option<PathBuf>> = plan.pip.iter().map(|r| r.local_file.clone()).collect();
    assert_eq!(
        local,
        [Some(dir.path().join("wheels/t-0.1-py3-none-any.whl")), None, None, None]
    );
    assert_eq!(plan.pip[2].line, 3);
}

#[test]
fn a_pip_failure_names_the_entries_as_the_file_lists_them() {
    let mut dependencies = workbench();
    dependencies.conda_packages.push("pytorch=0.4".into());
    let plan = PackagePlan::new(&dependencies, Path::new("/"), false).unwrap();
    let output = vec![
        "Step 5/6 : RUN [\"/usr/bin/python3\", \"-m\", \"pip\", \"install\", \"torch==0.4.*\"]".to_owned(),
        "ERROR: Could not find a version that satisfies the requirement torch==0.4.* (from versions: 2.5.1)".to_owned(),
        "ERROR: No matching distribution found for torch==0.4.*".to_owned(),
    ];
    assert_eq!(
        plan.pip_failure(&output).unwrap(),
        "pip could not install `pytorch=0.4` (a conda package of aml_config/conda_dependencies.yml, installed with pip as `torch==0.4.*`)"
    );
    let output = vec!["ERROR: No matching distribution found for joblib".to_owned()];
    assert_eq!(
        plan.pip_failure(&output).unwrap(),
        "pip could not install `joblib` (line 1 of the pip list of aml_config/conda_dependencies.yml)"
    );
    assert_eq!(plan.pip_failure(&["ERROR: no space left".to_owned()]), None);
}

#[test]
fn user_managed_environments_install_nothing() {
    let settings = |value: serde_json::Value| {
        let serde_json::Value::Object(map) = value else {
            unreachable!()
        };
        Target::new("t", "docker", map)
    };
    assert!(user_managed(&settings(json!({"userManagedEnvironment": true}))));
    assert!(user_managed(&settings(json!({"userManagedEnvironment": "true"}))));
    assert!(!user_managed(&settings(json!({"userManagedEnvironment": false}))));
    assert!(!user_managed(&settings(json!({}))));
    let note = unmanaged_note(&settings(json!({"userManagedEnvironment": false}))).unwrap();
    assert!(
        note.contains("aml_config/t.compute") && note.contains("a docker target installs nothing"),
        "{note}"
    );
    assert_eq!(unmanaged_note(&settings(json!({"userManagedEnvironment": true}))), None);
    assert_eq!(unmanaged_note(&settings(json!({}))), None);
}
