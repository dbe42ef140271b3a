//! From `secret:<id>` references in a target's settings to the secrets a plugin request
//! carries.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use xp_plugin_api::{Settings, Target};

use super::{SecretError, SecretId, SecretStore, SettingAt};
use crate::plugins::schema::SecretSettings;

/// Every `secret:<id>` reference among `settings`, by setting name; references whose id is
/// not valid are left out.
pub fn references(settings: &Settings) -> Vec<(String, SecretId)> {
    settings
        .iter()
        .filter_map(|(key, value)| {
            let id = SecretId::from_reference(value.as_str()?)?.ok()?;
            Some((key.clone(), id))
        })
        .collect()
}

/// The secrets that `target`'s settings refer to, by setting name, read from `store`: only
/// those stored for this project (at `project_root`) and target. `compute_file` is named in
/// errors: a missing secret, another project's, a bad reference, or a literal secret written
/// into the file by hand.
pub fn resolve(
    project_root: &Path,
    compute_file: &Path,
    target: &Target,
    store: &SecretStore,
    secret_settings: &SecretSettings,
) -> Result<BTreeMap<String, String>, SecretError> {
    let mut secrets = BTreeMap::new();
    for (key, value) in &target.settings {
        let Value::String(text) = value else {
            continue;
        };
        let at = || {
            Box::new(SettingAt {
                compute_file: compute_file.to_path_buf(),
                target: target.name.clone(),
                target_type: target.target_type.clone(),
                key: key.clone(),
                flag: secret_settings.flag(key).map(str::to_owned),
            })
        };
        match SecretId::from_reference(text) {
            Some(Ok(id)) => match store.get(&id)? {
                Some(secret) if secret.serves(&id, project_root, &target.name, key) => {
                    secrets.insert(key.clone(), secret.value);
                }
                // Neither the id nor the value: the reference may have been copied to probe.
                Some(_) => return Err(SecretError::NotThisProject { at: at() }),
                None => {
                    return Err(SecretError::Missing {
                        at: at(),
                        id: id.to_string(),
                        store: store.dir().to_path_buf(),
                    })
                }
            },
            Some(Err(_)) => return Err(SecretError::BadReference { at: at() }),
            // The plugin says which settings are secrets: a literal one is refused.
            None if secret_settings.contains(key) && !text.is_empty() => return Err(SecretError::Literal { at: at() }),
            None => {}
        }
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a plugin declaring a prompted `password` setting says.
    fn password_is_secret() -> SecretSettings {
        SecretSettings::of(
            &xp_plugin_api::PluginDescription::new("r", "1", &["remote"]).setting(
                xp_plugin_api::SettingSpec::new("password", xp_plugin_api::SettingKind::String, "p")
                    .secret(xp_plugin_api::SecretSource::Prompted)
                    .flags(&["--password"]),
            ),
        )
    }

    fn target(settings: Value) -> Target {
        Target {
            name: "gpu".into(),
            target_type: "remote".into(),
            settings: settings.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn references_resolve_by_setting_name_and_stay_in_the_settings() {
        let home = tempfile::tempdir().unwrap();
        let store = SecretStore::new(home.path());
        let id = SecretId::generate("gpu", "password");
        store
            .put(
                &id,
                &crate::secrets::Binding::new(Path::new("/p"), "gpu", "password"),
                "hunter2",
            )
            .unwrap();
        let target = target(serde_json::json!({
            "type": "remote", "address": "h:22", "password": id.reference(), "port": 22,
        }));
        let secrets = resolve(
            Path::new("/p"),
            Path::new("aml_config/gpu.compute"),
            &target,
            &store,
            &password_is_secret(),
        )
        .unwrap();
        assert_eq!(secrets.len(), 1);
        assert_eq!(secrets["password"], "hunter2");
        assert_eq!(target.settings["password"], Value::String(id.reference()));
        assert_eq!(references(&target.settings), vec![("password".to_owned(), id.clone())]);

        // The same reference from another project is refused, naming neither id nor value.
        let error = resolve(
            Path::new("/q"),
            Path::new("/q/aml_config/gpu.compute"),
            &target,
            &store,
            &password_is_secret(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("another project or target"), "{error}");
        assert!(!error.contains(id.as_str()) && !error.contains("hunter2"), "{error}");
    }

    #[test]
    fn no_references_no_secrets() {
        let home = tempfile::tempdir().unwrap();
        let store = SecretStore::new(&home.path().join("never-made"));
        let secrets = resolve(
            Path::new("/p"),
            Path::new("x.compute"),
            &target(serde_json::json!({"type": "remote", "password": ""})),
            &store,
            &password_is_secret(),
        )
        .unwrap();
        assert!(secrets.is_empty());
        assert!(!store.dir().exists());
    }

    #[test]
    fn a_missing_secret_names_the_file_the_key_and_the_fix() {
        let home = tempfile::tempdir().unwrap();
        let store = SecretStore::new(home.path());
        let target = target(serde_json::json!({"type": "remote", "password": "secret:gpu-password-00000000"}));
        let error = resolve(
            Path::new("/p"),
            Path::new("aml_config/gpu.compute"),
            &target,
            &store,
            &password_is_secret(),
        )
        .unwrap_err()
        .to_string();
        for needle in [
            "aml_config/gpu.compute",
            "`password`",
            "gpu-password-00000000",
            "xp computetarget attach remote --name gpu --force --password",
        ] {
            assert!(error.contains(needle), "{needle}: {error}");
        }
    }

    #[test]
    fn a_literal_password_is_refused_without_its_value() {
        let home = tempfile::tempdir().unwrap();
        let store = SecretStore::new(home.path());
        let target = target(serde_json::json!({"type": "remote", "password": "hunter2"}));
        let error = resolve(
            Path::new("/p"),
            Path::new("gpu.compute"),
            &target,
            &store,
            &password_is_secret(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("`password`") && error.contains("--password"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn a_reference_that_would_leave_the_store_is_refused() {
        let home = tempfile::tempdir().unwrap();
        let store = SecretStore::new(home.path());
        let target = target(serde_json::json!({"type": "remote", "privateKey": "secret:../../etc/passwd"}));
        let error = resolve(
            Path::new("/p"),
            Path::new("gpu.compute"),
            &target,
            &store,
            &password_is_secret(),
        )
        .unwrap_err();
        assert!(matches!(error, SecretError::BadReference { .. }), "{error}");
    }
}
