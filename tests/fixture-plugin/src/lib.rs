//! A plugin that misbehaves on request, so the tests can check that the host survives it.
//! Its `behaviour` setting: `panic` (panics in run), `fail` (reports a failure),
//! `panic-on-attach`. Not installed beside `xp`: tests point XP_PLUGIN_PATH at it.

use xp_plugin_api::{
    AttachReply, AttachRequest, Events, Executor, PluginDescription, PluginFailure, RunOutcome, RunRequest, RunStatus,
};

#[derive(Default)]
struct Fixture;

impl Executor for Fixture {
    fn describe(&self) -> PluginDescription {
        PluginDescription {
            name: "fixture".into(),
            version: "0.0.0".into(),
            api_version: xp_plugin_api::API_VERSION.into(),
            target_types: vec!["crashy".into()],
        }
    }

    fn attach(&self, request: AttachRequest, _events: &Events<'_>) -> Result<AttachReply, PluginFailure> {
        if request.target.setting_str("behaviour") == Some("panic-on-attach") {
            panic!("deliberate panic while attaching");
        }
        Ok(AttachReply {
            settings: request.target.settings,
            ..AttachReply::default()
        })
    }

    fn run(&self, request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
        events.status(RunStatus::Running);
        events.stdout("fixture plugin running");
        match request.target.setting_str("behaviour") {
            Some("fail") => Err(PluginFailure::new("the fixture failed as asked")),
            Some("panic") => panic!("deliberate panic in run {}", request.run_id),
            _ => Ok(RunOutcome::default()),
        }
    }
}

xp_plugin_api::export_plugin!(Fixture);
