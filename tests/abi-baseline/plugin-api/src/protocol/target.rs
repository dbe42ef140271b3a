use serde::{Deserialize, Serialize};

/// A JSON object: the settings of a target as its `.compute` file holds them. Values keep their
/// YAML types: `5` arrives as a number, `abc` as a string, `true` as a boolean, a list as an
/// array (`xp computetarget attach --set key=value` parses `value` as YAML too).
pub type Settings = serde_json::Map<String, serde_json::Value>;

/// The prefix of a setting value that refers to the user's secret store instead of holding a
/// secret: `password: "secret:<id>"`. The host resolves it into the request's `secrets`.
pub const SECRET_REFERENCE_PREFIX: &str = "secret:";

/// A compute target: its name (the `.compute` file's stem), type, and every key of the file.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Target {
    pub name: String,
    #[serde(rename = "type")]
    pub target_type: String,
    pub settings: Settings,
}

impl Target {
    /// A target of `target_type` named `name` with these settings.
    pub fn new(name: &str, target_type: &str, settings: Settings) -> Self {
        Target {
            name: name.to_owned(),
            target_type: target_type.to_owned(),
            settings,
        }
    }

    /// A string setting, if present and a string.
    pub fn setting_str(&self, key: &str) -> Option<&str> {
        self.settings.get(key).and_then(|value| value.as_str())
    }

    /// A boolean setting; Workbench wrote both `true` and `"true"`.
    pub fn setting_bool(&self, key: &str) -> Option<bool> {
        match self.settings.get(key)? {
            serde_json::Value::Bool(value) => Some(*value),
            serde_json::Value::String(text) => match text.to_ascii_lowercase().as_str() {
                "true" | "yes" => Some(true),
                "false" | "no" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// A non-negative whole-number setting, written as a number or as digits in a string.
    pub fn setting_u64(&self, key: &str) -> Option<u64> {
        match self.settings.get(key)? {
            serde_json::Value::Number(number) => number.as_u64(),
            serde_json::Value::String(text) => text.trim().parse().ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_as_workbench_wrote_them() {
        let settings: Settings =
            serde_json::from_str(r#"{"a": true, "b": "True", "c": "no", "d": 5, "e": "7", "f": "x", "g": [1]}"#)
                .unwrap();
        let target = Target::new("t", "local", settings);
        assert_eq!(target.setting_bool("a"), Some(true));
        assert_eq!(target.setting_bool("b"), Some(true));
        assert_eq!(target.setting_bool("c"), Some(false));
        assert_eq!(target.setting_bool("f"), None);
        assert_eq!(target.setting_u64("d"), Some(5));
        assert_eq!(target.setting_u64("e"), Some(7));
        assert_eq!(target.setting_u64("g"), None);
        assert_eq!(target.setting_str("f"), Some("x"));
        assert_eq!(target.setting_str("d"), None);
    }
}
