//! Quoting for the remote shell: every argument and value that travels through it is quoted,
//! so no value can run a command.

/// `text` as one single-quoted POSIX shell word.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A path on the host as one shell word: absolute paths as they are, others under `$HOME`
/// (a command's working folder is the home folder, but `cd` elsewhere would change that).
pub fn shell_path(path: &str) -> String {
    if path.starts_with('/') {
        quote(path)
    } else {
        format!("\"$HOME\"/{}", quote(path))
    }
}

/// Whether `name` may be an environment variable name in a shell script.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn quoted_values_arrive_verbatim_through_a_real_shell() {
        for value in [
            "plain",
            "it's",
            "'; rm -rf ~ #",
            "$(touch /tmp/xp-pwned)",
            "a\nb",
            "`id`",
            "\\",
            "",
        ] {
            let output = Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(value)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(output.stdout).unwrap(), value);
        }
        assert!(!std::path::Path::new("/tmp/xp-pwned").exists());
    }

    #[test]
    fn paths_under_home_expand_only_home() {
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_path("a b/$(x)")))
            .env("HOME", "/h")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(output.stdout).unwrap(), "/h/a b/$(x)");
        assert_eq!(shell_path("/abs"), "'/abs'");
    }

    #[test]
    fn variable_names() {
        assert!(is_variable_name("AZUREML_RUN_ID"));
        assert!(is_variable_name("_x1"));
        assert!(!is_variable_name("1x"));
        assert!(!is_variable_name("A-B"));
        assert!(!is_variable_name("A=B"));
        assert!(!is_variable_name(""));
    }
}
