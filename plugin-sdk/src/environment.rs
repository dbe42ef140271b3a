//! The environment every script gets, whatever the target.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use xp_plugin_api::RunRequest;

use crate::resolve::expand_home;

/// Where Workbench kept the shared directory when `nativeSharedDirectory` is not set.
pub const DEFAULT_SHARED_DIRECTORY: &str = "~/.azureml/share/";

/// The run's variables plus xp's: `PYTHONPATH` starts with xp's helpers (`support_dir` as the
/// target sees it), output is unbuffered so it streams live, and
/// `AZUREML_NATIVE_SHARE_DIRECTORY` names `shared_dir` when there is one.
pub fn script_environment(
    request: &RunRequest,
    support_dir: &str,
    inherited_pythonpath: Option<&str>,
    shared_dir: Option<&str>,
) -> BTreeMap<String, String> {
    let mut environment = request.environment.clone();
    let user_pythonpath = environment
        .remove("PYTHONPATH")
        .or_else(|| inherited_pythonpath.map(str::to_owned));
    let pythonpath = match user_pythonpath.filter(|p| !p.is_empty()) {
        Some(rest) => format!("{support_dir}:{rest}"),
        None => support_dir.to_owned(),
    };
    environment.insert("PYTHONPATH".into(), pythonpath);
    environment.insert("PYTHONUNBUFFERED".into(), "1".into());
    if let Some(shared) = shared_dir {
        environment.insert("AZUREML_NATIVE_SHARE_DIRECTORY".into(), shared.to_owned());
    }
    environment
}

/// The project's shared directory on this machine: `<nativeSharedDirectory>/<project>/`.
pub fn local_shared_directory(request: &RunRequest) -> PathBuf {
    let base = request
        .context
        .target
        .setting_str("nativeSharedDirectory")
        .filter(|dir| !dir.trim().is_empty())
        .unwrap_or(DEFAULT_SHARED_DIRECTORY);
    expand_home(base).join(&request.context.project_name)
}

/// `path` with a trailing `/`, as Workbench gave directories to scripts.
pub fn with_trailing_slash(path: &Path) -> String {
    let text = path.to_string_lossy();
    if text.ends_with('/') {
        text.into_owned()
    } else {
        format!("{text}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_come_first_on_pythonpath() {
        let mut request = RunRequest::default();
        request.environment.insert("A".into(), "1".into());
        let env = script_environment(&request, "/s", Some("/user/lib"), Some("/share/p/"));
        assert_eq!(env["PYTHONPATH"], "/s:/user/lib");
        assert_eq!(env["A"], "1");
        assert_eq!(env["PYTHONUNBUFFERED"], "1");
        assert_eq!(env["AZUREML_NATIVE_SHARE_DIRECTORY"], "/share/p/");

        request.environment.insert("PYTHONPATH".into(), "/mine".into());
        let env = script_environment(&request, "/s", Some("/user/lib"), None);
        assert_eq!(
            env["PYTHONPATH"], "/s:/mine",
            "the run configuration's PYTHONPATH wins over the inherited one"
        );
    }
}
