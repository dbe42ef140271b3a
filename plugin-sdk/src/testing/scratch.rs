// Requests gain fields in minor versions of plugin-api: built with `..Default::default()`
// even where every field is given today.
#![allow(clippy::needless_update)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use xp_plugin_api::{
    AttachRequest, CleanRequest, Dependencies, PrepareRequest, ReapRequest, RequestContext, RunRequest, Settings,
    Target,
};

/// A scratch folder for one test, removed when dropped: a project (`project/`), the plugin's
/// state folder, a user config folder, and xp's Python helpers, from which requests are made in
/// one line each.
pub struct Scratch {
    root: PathBuf,
    runs: AtomicU64,
    /// Which scratch of this process this is: run ids carry it, so that runs of tests going at
    /// once never share an `XP_RUN_ID` (cancel ends every process that carries the run's).
    serial: u64,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Scratch {
    /// A new scratch folder under the system's temporary folder.
    pub fn new() -> Scratch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let serial = NEXT.fetch_add(1, Ordering::SeqCst);
        let root = std::env::temp_dir().join(format!("xp-plugin-test-{}-{serial}-{nanos}", std::process::id()));
        for dir in ["project", "state", "config", "home"] {
            std::fs::create_dir_all(root.join(dir)).expect("making the scratch folder");
        }
        crate::python::write_helpers(&root.join("support")).expect("writing xp's Python helpers");
        Scratch {
            root,
            runs: AtomicU64::new(0),
            serial,
        }
    }

    /// The scratch folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The project folder.
    pub fn project_dir(&self) -> PathBuf {
        self.root.join("project")
    }

    /// Writes a file of the project (folders made as needed).
    pub fn write(&self, relative: &str, contents: &str) -> &Self {
        let path = self.project_dir().join(relative);
        std::fs::create_dir_all(path.parent().expect("inside the project")).expect("making a folder");
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        self
    }

    /// A target named `test` of `target_type` with `settings` (a JSON object).
    pub fn target(&self, target_type: &str, settings: serde_json::Value) -> Target {
        let settings: Settings = match settings {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => Settings::new(),
            other => panic!("settings are a JSON object, not {other}"),
        };
        Target::new("test", target_type, settings)
    }

    /// The context block every request carries, for `target`.
    pub fn context(&self, target: Target) -> RequestContext {
        RequestContext {
            host_api_version: xp_plugin_api::API_VERSION.to_owned(),
            project_dir: self.project_dir(),
            project_name: "project".to_owned(),
            target,
            state_dir: self.root.join("state"),
            user_config_dir: self.root.join("config"),
            secrets: BTreeMap::new(),
        }
    }

    pub fn attach_request(&self, target: Target) -> AttachRequest {
        AttachRequest {
            context: self.context(target),
            ..AttachRequest::default()
        }
    }

    pub fn prepare_request(&self, target: Target) -> PrepareRequest {
        PrepareRequest {
            context: self.context(target),
            dependencies: Dependencies::default(),
            framework: "Python".to_owned(),
            ..PrepareRequest::default()
        }
    }

    /// The reap of run `run_id` (number 1) of `target`.
    pub fn reap_request(&self, target: Target, run_id: &str) -> ReapRequest {
        ReapRequest {
            context: self.context(target),
            run_id: run_id.to_owned(),
            run_number: 1,
        }
    }

    pub fn clean_request(&self, target: Target) -> CleanRequest {
        CleanRequest {
            context: self.context(target),
            ..CleanRequest::default()
        }
    }

    /// A run of `script` with `arguments`, as the host makes it: a fresh copy of the project
    /// as the snapshot, an empty artifacts folder, xp's variables in the environment. Its run
    /// id is unique on the machine (`project_1x<scratch>x<pid>`).
    pub fn run_request(&self, target: Target, script: &str, arguments: &[&str]) -> RunRequest {
        let number = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        let run_id = format!("project_{number}x{}x{}", self.serial, std::process::id());
        let run_dir = self.root.join("runs").join(&run_id);
        let snapshot_dir = run_dir.join("snapshot");
        copy_tree(&self.project_dir(), &snapshot_dir).expect("copying the project to the snapshot");
        let artifacts_dir = run_dir.join("outputs");
        std::fs::create_dir_all(&artifacts_dir).expect("making the artifacts folder");
        let mut environment = BTreeMap::new();
        environment.insert("XP_RUN_ID".to_owned(), run_id.clone());
        environment.insert("AZUREML_RUN_ID".to_owned(), run_id.clone());
        environment.insert("XP_RUN_NUMBER".to_owned(), number.to_string());
        let mut all_arguments = vec![script.to_owned()];
        all_arguments.extend(arguments.iter().map(|a| (*a).to_owned()));
        RunRequest {
            context: self.context(target),
            run_id,
            run_number: number,
            snapshot_dir,
            artifacts_dir,
            support_dir: self.root.join("support"),
            script: script.to_owned(),
            arguments: all_arguments,
            environment,
            framework: "Python".to_owned(),
            dependencies: Dependencies::default(),
            prepare_environment: false,
            ..RunRequest::default()
        }
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
