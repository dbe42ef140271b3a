//! Making pip's failure say which line of the pip list failed.

use xp_plugin_api::PluginFailure;

use crate::environment::{dependency_file_name, Spec, REQUIREMENTS_FILE};

/// How many of pip's last error lines a failure message quotes.
pub const PIP_ERROR_LINES: usize = 8;

/// Lower case, with `_` and `.` as `-`: how pip compares project names.
fn normalise(text: &str) -> String {
    text.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// The project a pip requirement names (`Scikit_Learn>=1` -> `scikit-learn`), or the file name
/// of a path, normalised.
fn requirement_name(spec: &str) -> String {
    let spec = spec.trim();
    if spec.contains('/') || spec.ends_with(".whl") || spec.ends_with(".tar.gz") || spec.ends_with(".zip") {
        return normalise(spec.rsplit('/').next().unwrap_or(spec));
    }
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .unwrap_or(spec.len());
    normalise(&spec[..end])
}

/// Whether `word` occurs in `text` with no name character either side.
fn contains_word(text: &str, word: &str) -> bool {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '-';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

/// The lines of the pip list (numbered from 1) that pip's error output names.
fn failing_lines<'a>(packages: &'a [String], errors: &[String]) -> Vec<(usize, &'a str)> {
    let haystack = errors.join("\n");
    let normalised = normalise(&haystack);
    let mut found: Vec<(usize, &str)> = packages
        .iter()
        .enumerate()
        .filter(|(_, spec)| !spec.trim().is_empty() && !spec.trim().starts_with('-'))
        .filter(|(_, spec)| {
            let name = requirement_name(spec);
            haystack.contains(spec.trim()) || (!name.is_empty() && contains_word(&normalised, &name))
        })
        .map(|(index, spec)| (index + 1, spec.trim()))
        .collect();
    if found.is_empty() {
        // pip names requirements-file lines as `(from -r FILE (line N))`.
        for part in haystack.split(REQUIREMENTS_FILE).skip(1) {
            let number = part
                .split("(line ")
                .nth(1)
                .and_then(|rest| rest.split(')').next())
                .and_then(|n| n.trim().parse::<usize>().ok());
            if let Some(number) = number.filter(|n| (1..=packages.len()).contains(n)) {
                if !found.iter().any(|(n, _)| *n == number) {
                    found.push((number, packages[number - 1].trim()));
                }
            }
        }
    }
    if found.is_empty() && packages.len() == 1 {
        found.push((1, packages[0].trim()));
    }
    found
}

pub(crate) fn pip_failure(
    spec: &Spec<'_>,
    exit_code: i32,
    errors: &[String],
    last_stdout: Vec<String>,
) -> PluginFailure {
    let file = dependency_file_name(spec.dependencies);
    let packages = &spec.dependencies.pip_packages;
    let culprits = failing_lines(packages, errors);
    let what = match culprits.as_slice() {
        [] => format!("the pip list of {file}"),
        lines => lines
            .iter()
            .map(|(number, line)| format!("`{line}` (line {number} of the pip list of {file})"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let tail: Vec<String> = if errors.is_empty() {
        last_stdout
    } else {
        errors.to_vec()
    };
    let tail = &tail[tail.len().saturating_sub(PIP_ERROR_LINES)..];
    PluginFailure::new(format!(
        "pip could not install {what}; pip exited with code {exit_code}:\n  {}\nFix the pip list in {file} (paths are relative to the project {}) and submit again; nothing was cached.",
        tail.join("\n  "),
        spec.project_dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_the_failing_pip_line() {
        let packages = list(&["numpy", "./wheels/missing-0.1-py3-none-any.whl", "Scikit_Learn>=1"]);
        let errors = list(&[
            "WARNING: Requirement './wheels/missing-0.1-py3-none-any.whl' looks like a filename, but the file does not exist",
            "ERROR: Could not install packages due to an OSError: [Errno 2] No such file or directory",
        ]);
        assert_eq!(
            failing_lines(&packages, &errors),
            vec![(2, "./wheels/missing-0.1-py3-none-any.whl")]
        );
        let errors = list(&["ERROR: No matching distribution found for scikit-learn>=1"]);
        assert_eq!(failing_lines(&packages, &errors), vec![(3, "Scikit_Learn>=1")]);
        let errors = list(&["ERROR: something in /tmp/x/xp-requirements.txt (line 1) went wrong"]);
        assert_eq!(failing_lines(&packages, &errors), vec![(1, "numpy")]);
        assert!(failing_lines(&packages, &list(&["ERROR: disk full"])).is_empty());
    }
}
