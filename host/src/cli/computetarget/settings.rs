//! `xp computetarget settings TYPE`: the settings the plugin serving TYPE declares, as a
//! table or as the Markdown the README's tables are made of (a test keeps them equal).

use xp_plugin_api::{PluginDescription, SecretSource, SettingSpec};

use super::{display_value, CommandContext};
use crate::cli::output;
use crate::plugins::{self, schema::expected_words};
use crate::project::Project;

/// The columns of one setting: key, what it expects, default, flags, meaning.
fn row(spec: &SettingSpec) -> [String; 5] {
    let mut meaning = spec.doc.clone();
    match spec.secret {
        Some(SecretSource::Generated) => meaning.push_str("; secret, made by the plugin at attach"),
        Some(_) => meaning.push_str("; secret, typed at attach"),
        None => {}
    }
    if spec.required {
        meaning.push_str("; required");
    }
    [
        spec.key.clone(),
        expected_words(spec),
        spec.default.as_ref().map(display_value).unwrap_or_default(),
        spec.flags.join(", "),
        meaning,
    ]
}

/// The settings of `description` as a Markdown table.
pub fn markdown(description: &PluginDescription) -> String {
    let cell = |text: &str, code: bool| -> String {
        let text = text.replace('|', "\\|");
        if code && !text.is_empty() {
            format!("`{text}`")
        } else {
            // Outside code, `<it>` would read as an HTML tag.
            text.replace('<', "&lt;").replace('>', "&gt;")
        }
    };
    let mut text =
        String::from("| setting | expects | default | attach flag | meaning |\n| --- | --- | --- | --- | --- |\n");
    for spec in &description.settings {
        let [key, expects, default, _, meaning] = row(spec);
        // Each flag in its own code span.
        let flags = spec.flags.iter().map(|f| cell(f, true)).collect::<Vec<_>>().join(" ");
        text.push_str(&format!(
            "| {} | {} | {} | {flags} | {} |\n",
            cell(&key, true),
            cell(&expects, false),
            cell(&default, true),
            cell(&meaning, false)
        ));
    }
    text
}

pub fn settings(context: &CommandContext, target_type: &str, as_markdown: bool) -> anyhow::Result<i32> {
    let project = context.project().ok();
    let plugin = plugins::load_for_type(
        &target_type.to_ascii_lowercase(),
        project.as_ref().map(Project::root),
        &context.dirs,
    )?;
    plugins::warn_passed_over(&plugin);
    let description = &plugin.description;
    if as_markdown {
        print!("{}", markdown(description));
        return Ok(0);
    }
    if description.settings.is_empty() {
        eprintln!(
            "plugin '{}' {} declares no settings: whatever the .compute file holds is passed to it unchecked",
            description.name, description.version
        );
        return Ok(0);
    }
    let rows = description.settings.iter().map(|spec| row(spec).to_vec()).collect();
    output::print(&output::table(&["KEY", "EXPECTS", "DEFAULT", "FLAGS", "MEANING"], rows));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use xp_plugin_api::SettingKind;

    use super::*;

    #[test]
    fn markdown_rows_carry_kind_default_flags_and_secret_notes() {
        let description = PluginDescription::new("demo", "1.0.0", &["demo"])
            .setting(
                SettingSpec::new("address", SettingKind::String, "HOST or HOST:PORT")
                    .required()
                    .flags(&["--address"]),
            )
            .setting(SettingSpec::new("shared", SettingKind::Boolean, "a | <b>").default_value(true))
            .setting(
                SettingSpec::new("password", SettingKind::String, "a password")
                    .secret(SecretSource::Prompted)
                    .flags(&["--password"]),
            );
        let text = markdown(&description);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[2],
            "| `address` | text |  | `--address` | HOST or HOST:PORT; required |"
        );
        assert_eq!(lines[3], "| `shared` | true or false | `true` |  | a \\| &lt;b&gt; |");
        assert_eq!(
            lines[4],
            "| `password` | text |  | `--password` | a password; secret, typed at attach |"
        );
    }
}
