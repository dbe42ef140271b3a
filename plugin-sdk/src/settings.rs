//! Settings many target types share, declared once: put them in a plugin's description
//! (`PluginDescription::new(...).setting(settings::python_location())`) and the host derives
//! attach flags, validation, `--help` and `xp computetarget show` from them.

use xp_plugin_api::{SettingKind, SettingSpec};

use crate::environment::DEFAULT_SHARED_DIRECTORY;
use crate::packages::{USER_MANAGED_SETTING, WHEELHOUSE_SETTING};

/// `pythonLocation`: the interpreter that runs scripts (default `python3`), `--python-location`.
pub fn python_location() -> SettingSpec {
    SettingSpec::new(
        "pythonLocation",
        SettingKind::String,
        "the interpreter that runs the script: a name on PATH or a path",
    )
    .default_value("python3")
    .flags(&["--python-location"])
}

/// `nativeSharedDirectory`: the folder every run of the project shares, given to scripts as
/// `AZUREML_NATIVE_SHARE_DIRECTORY` (plus `<project>/`).
pub fn native_shared_directory() -> SettingSpec {
    SettingSpec::new(
        "nativeSharedDirectory",
        SettingKind::String,
        "a folder shared by every run of the project (scripts get <it>/<project>/ as AZUREML_NATIVE_SHARE_DIRECTORY)",
    )
    .default_value(DEFAULT_SHARED_DIRECTORY)
}

/// `sparkSubmitLocation`: the spark-submit that runs `Framework: PySpark` scripts.
pub fn spark_submit_location() -> SettingSpec {
    SettingSpec::new(
        "sparkSubmitLocation",
        SettingKind::String,
        "spark-submit for Framework PySpark: a name on PATH or a path",
    )
    .default_value("spark-submit")
}

/// `userManagedEnvironment`: true when the target's interpreter is used as it is and xp
/// installs nothing (Workbench's key).
pub fn user_managed_environment() -> SettingSpec {
    SettingSpec::new(
        USER_MANAGED_SETTING,
        SettingKind::Boolean,
        "use the interpreter as it is: install nothing from the conda file",
    )
}

/// `wheelhouse`: a folder of wheels pip installs from, offline.
pub fn wheelhouse() -> SettingSpec {
    SettingSpec::new(
        WHEELHOUSE_SETTING,
        SettingKind::Path,
        "a folder of wheels: pip installs from it alone (--no-index --find-links), offline",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_settings_carry_their_defaults_and_flags() {
        assert_eq!(python_location().default, Some("python3".into()));
        assert_eq!(python_location().flags, ["--python-location"]);
        assert_eq!(native_shared_directory().default, Some(DEFAULT_SHARED_DIRECTORY.into()));
        assert_eq!(user_managed_environment().kind, SettingKind::Boolean);
        assert_eq!(wheelhouse().kind, SettingKind::Path);
    }
}
