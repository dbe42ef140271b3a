//! The one way the host makes a plugin call about a target (attach, prepare, clean, reap, and the
//! plan of a run): find the target and the plugin that serves its type, check the target's
//! settings against the plugin's schema before anything runs, resolve its secrets, and mask
//! them in whatever the call prints, returns or fails with.

use std::collections::BTreeMap;

use xp_plugin_api::RequestContext;

use super::sink::RunSink;
use super::SubmitError;
use crate::paths::UserDirs;
use crate::plugins::schema::{self, SecretSettings};
use crate::plugins::{self, CallError, LoadedPlugin};
use crate::project::{ComputeTarget, Project};
use crate::secrets::{self, Redactor, SecretStore};

/// A target ready for calls into its plugin.
pub struct TargetCall {
    pub target: ComputeTarget,
    pub plugin: LoadedPlugin,
    /// The target's secrets, resolved from the user's store (this project's target only).
    pub secrets: BTreeMap<String, String>,
    pub redactor: Redactor,
}

impl TargetCall {
    /// The target named `name` of `project`.
    pub fn open(project: &Project, dirs: &UserDirs, name: &str) -> Result<TargetCall, SubmitError> {
        TargetCall::for_target(project, dirs, project.load_target(name)?)
    }

    /// `target`, loaded already.
    pub fn for_target(project: &Project, dirs: &UserDirs, target: ComputeTarget) -> Result<TargetCall, SubmitError> {
        let plugin = plugins::load_for_type(&target.target_type, Some(project.root()), dirs)?;
        plugins::warn_passed_over(&plugin);
        check_settings(&target, &plugin)?;
        let secrets = resolve_secrets(project, &target, &plugin, dirs)?;
        let redactor = Redactor::for_secrets(&secrets);
        Ok(TargetCall {
            target,
            plugin,
            secrets,
            redactor,
        })
    }

    /// A target not yet written (attach), with the plugin that serves it and its secrets: the
    /// calls about it go through the same context, sink and masking as any other.
    pub fn with_secrets(target: ComputeTarget, plugin: LoadedPlugin, secrets: BTreeMap<String, String>) -> TargetCall {
        let redactor = Redactor::for_secrets(&secrets);
        TargetCall {
            target,
            plugin,
            secrets,
            redactor,
        }
    }

    /// The context block of a request about this target.
    pub fn context(&self, project: &Project, dirs: &UserDirs) -> RequestContext {
        self.plugin.context(
            project.root(),
            project.name(),
            self.target.to_plugin_target(),
            dirs,
            self.secrets.clone(),
        )
    }

    /// A sink for a call outside a run: echoes the plugin's output (when `echo`), masked.
    pub fn sink(&self, echo: bool, cancel_requested: fn() -> bool) -> RunSink<'static> {
        RunSink::new(None, None, echo, cancel_requested).with_redactor(self.redactor.clone())
    }

    /// The error of a failed call, with the target named and the secrets masked.
    pub fn error(&self, source: CallError) -> SubmitError {
        SubmitError::PluginCall {
            target: self.target.name.clone(),
            compute_file: self.target.path.clone(),
            source: self.redactor.call_error(source),
        }
    }
}

/// The target's settings against the plugin's schema: a wrong type or value is an error that
/// names the file, the line, the key and what was expected, before anything runs.
pub fn check_settings(target: &ComputeTarget, plugin: &LoadedPlugin) -> Result<(), SubmitError> {
    if plugin.description.settings.is_empty() {
        return Ok(());
    }
    Ok(schema::validate_file(
        &target.settings,
        &plugin.description,
        &target.path,
    )?)
}

/// The secrets `target`'s settings refer to, from the user's store: those stored for this
/// project's target only; which settings are secrets is the plugin's to say.
pub fn resolve_secrets(
    project: &Project,
    target: &ComputeTarget,
    plugin: &LoadedPlugin,
    dirs: &UserDirs,
) -> Result<BTreeMap<String, String>, SubmitError> {
    Ok(secrets::resolve(
        project.root(),
        &target.path,
        &target.to_plugin_target(),
        &SecretStore::new(&dirs.config),
        &SecretSettings::of(&plugin.description),
    )?)
}
