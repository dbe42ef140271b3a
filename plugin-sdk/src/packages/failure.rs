//! Which requirements pip's output blames, from the sentences pip writes when it fails.

use super::conda::normalise_name;
use super::Requirement;

/// Sentences of pip that name what failed, and where that name list ends.
const BLAMING: &[(&str, &[&str])] = &[
    ("No matching distribution found for ", &[]),
    ("Could not find a version that satisfies the requirement ", &[" (from"]),
    ("Could not build wheels for ", &[", which", " which"]),
    ("Failed building wheel for ", &[]),
    ("Failed to build ", &[]),
    ("Invalid requirement: ", &[" (from", ": "]),
    ("Cannot install ", &[" because"]),
    ("Requirement ", &[" looks like a filename"]),
    ("No such file or directory: ", &[]),
    ("is not a valid wheel filename", &[]),
    ("Could not install requirement ", &[" because"]),
];

/// Lines of a build's output that speak for the build tool, not pip, and repeat the whole
/// pip command line.
const BUILD_TOOL_LINES: &[&str] = &[
    "returned a non-zero code",
    "did not complete successfully",
    "failed to solve",
];

/// The words after a blaming sentence, each a requirement or a path.
fn blamed_words(line: &str) -> Vec<String> {
    if BUILD_TOOL_LINES.iter().any(|marker| line.contains(marker)) {
        return Vec::new();
    }
    let mut words = Vec::new();
    for (phrase, ends) in BLAMING {
        let Some(at) = line.find(phrase) else {
            continue;
        };
        if *phrase == "Requirement " && !line.contains("looks like a filename") {
            continue;
        }
        let named = if phrase.starts_with("is not a valid") {
            // "<file> is not a valid wheel filename."
            &line[..at]
        } else {
            let mut rest = &line[at + phrase.len()..];
            for end in *ends {
                if let Some(cut) = rest.find(end) {
                    rest = &rest[..cut];
                }
            }
            rest
        };
        words.extend(
            named
                .split(|c: char| c.is_whitespace() || c == ',')
                .map(|word| word.trim_matches(|c: char| matches!(c, '\'' | '"' | '.' | ':' | '(' | ')' | '`')))
                .filter(|word| !word.is_empty() && *word != "and")
                .map(str::to_owned),
        );
    }
    words
}

/// The project name of a requirement (`Scikit_Learn>=1` -> `scikit-learn`), normalised.
fn project_name(requirement: &str) -> String {
    let end = requirement
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(requirement.len());
    normalise_name(&requirement[..end])
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

fn names_a_file(requirement: &Requirement) -> bool {
    requirement.local_file.is_some()
        || requirement.pip.contains('/')
        || [".whl", ".tar.gz", ".zip"]
            .iter()
            .any(|ext| requirement.pip.ends_with(ext))
}

/// The requirements (in plan order) that pip's `output` blames.
pub(super) fn failing<'a>(requirements: &'a [Requirement], output: &[String]) -> Vec<&'a Requirement> {
    let words: Vec<String> = output.iter().flat_map(|line| blamed_words(line)).collect();
    requirements
        .iter()
        .filter(|requirement| {
            if names_a_file(requirement) {
                let wanted = file_name(requirement.pip.trim());
                words.iter().any(|word| file_name(word) == wanted)
            } else {
                let wanted = project_name(&requirement.pip);
                !wanted.is_empty() && words.iter().any(|word| project_name(word) == wanted)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::Origin;

    fn requirement(pip: &str, origin: Origin) -> Requirement {
        Requirement {
            pip: pip.to_owned(),
            entry: pip.to_owned(),
            origin,
            line: 1,
            local_file: None,
        }
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    fn blamed(requirements: &[Requirement], output: &str) -> Vec<String> {
        failing(requirements, &lines(output))
            .into_iter()
            .map(|r| r.pip.clone())
            .collect()
    }

    #[test]
    fn names_what_pip_blames() {
        let plan = [
            requirement("scikit-learn==0.18.1.*", Origin::Conda),
            requirement("pandas", Origin::Conda),
            requirement("xp-no-such-package", Origin::Conda),
            requirement("./wheels/missing-0.1-py3-none-any.whl", Origin::Pip),
            requirement("Requests>=2", Origin::Pip),
        ];
        assert_eq!(
            blamed(&plan, "ERROR: Could not find a version that satisfies the requirement xp-no-such-package (from versions: none)\nERROR: No matching distribution found for xp-no-such-package"),
            ["xp-no-such-package"]
        );
        assert_eq!(
            blamed(&plan, "ERROR: Could not find a version that satisfies the requirement scikit-learn==0.18.1.* (from versions: 1.5.2)"),
            ["scikit-learn==0.18.1.*"]
        );
        assert_eq!(
            blamed(&plan, "WARNING: Requirement './wheels/missing-0.1-py3-none-any.whl' looks like a filename, but the file does not exist\nERROR: Could not install packages due to an OSError: [Errno 2] No such file or directory: '/tmp/x/wheels/missing-0.1-py3-none-any.whl'"),
            ["./wheels/missing-0.1-py3-none-any.whl"]
        );
        assert_eq!(
            blamed(&plan, "ERROR: Cannot install pandas==2.2.3 and requests==2.0 because these package versions have conflicting dependencies."),
            ["pandas", "Requests>=2"]
        );
        assert_eq!(
            blamed(&plan, "#8 41.2 ERROR: Could not build wheels for scikit-learn, which is required to install pyproject.toml-based projects"),
            ["scikit-learn==0.18.1.*"]
        );
    }

    #[test]
    fn the_build_tools_own_lines_blame_nothing() {
        let plan = [requirement("pandas", Origin::Conda), requirement("joblib", Origin::Pip)];
        let output = "The command '/usr/bin/python3 -m pip install pandas joblib' returned a non-zero code: 1\nERROR: failed to solve: process \"/usr/bin/python3 -m pip install pandas joblib\" did not complete successfully: exit code: 1\nERROR: disk full";
        assert!(blamed(&plan, output).is_empty());
        assert!(
            blamed(&plan[..1], output).is_empty(),
            "a lone requirement is not blamed for what pip did not say: a build does more than pip"
        );
    }
}
