//! The conda file's `python` entry against the interpreter a target has. Targets without conda
//! cannot install another Python, so a mismatch is a note for the user, not an error.

use std::cmp::Ordering;

use super::conda::CondaSpec;

/// Numeric release components of a version (`3.11.2` -> [3, 11, 2]); `None` when a part is
/// not a number (`3.12.0rc1` gives [3, 12] and stops at the first non-number).
fn release(version: &str) -> Option<Vec<u64>> {
    let mut parts = Vec::new();
    for part in version.trim().split('.') {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            break;
        }
        parts.push(digits.parse().ok()?);
        if digits.len() != part.len() {
            break;
        }
    }
    (!parts.is_empty()).then_some(parts)
}

fn compare(a: &[u64], b: &[u64]) -> Ordering {
    let length = a.len().max(b.len());
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    (0..length)
        .map(|i| at(a, i).cmp(&at(b, i)))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// Whether `version` satisfies one pip clause (`==3.5.*`, `>=3.6`, `~=3.6`).
fn satisfies(version: &[u64], clause: &str) -> Option<bool> {
    let clause = clause.trim();
    let operator_end = clause.find(|c: char| c.is_ascii_digit()).unwrap_or(clause.len());
    let (operator, wanted) = clause.split_at(operator_end);
    if let Some(prefix) = wanted.strip_suffix(".*") {
        let prefix = release(prefix)?;
        let matches = version.len() >= prefix.len() && version[..prefix.len()] == prefix[..];
        return match operator {
            "==" => Some(matches),
            "!=" => Some(!matches),
            _ => None,
        };
    }
    let wanted = release(wanted)?;
    let order = compare(version, &wanted);
    Some(match operator {
        "==" | "===" => order.is_eq(),
        "!=" => order.is_ne(),
        ">=" => order.is_ge(),
        "<=" => order.is_le(),
        ">" => order.is_gt(),
        "<" => order.is_lt(),
        "~=" if wanted.len() >= 2 => {
            order.is_ge()
                && version.len() >= wanted.len() - 1
                && version[..wanted.len() - 1] == wanted[..wanted.len() - 1]
        }
        _ => return None,
    })
}

/// Whether an interpreter of `interpreter_version` (`3.11.2`) satisfies the conda entry
/// `python_entry` (`python=3.5.2`, `python>=3.6`, `python`); `None` when that cannot be told.
pub fn interpreter_satisfies(python_entry: &str, interpreter_version: &str) -> Option<bool> {
    let spec = CondaSpec::parse(python_entry).ok()?;
    let version = release(interpreter_version)?;
    let Some(specifier) = spec.pip_specifier().ok()? else {
        return Some(true);
    };
    let mut all = true;
    for clause in specifier.split(',') {
        all &= satisfies(&version, clause)?;
    }
    Some(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conda_python_entries_against_an_interpreter() {
        assert_eq!(interpreter_satisfies("python=3.5.2", "3.11.2"), Some(false));
        assert_eq!(interpreter_satisfies("python=3.5.2", "3.5.2"), Some(true));
        assert_eq!(interpreter_satisfies("python=3.5", "3.5.4"), Some(true));
        assert_eq!(interpreter_satisfies("python=3", "3.11.7"), Some(true));
        assert_eq!(
            interpreter_satisfies("python=3.1", "3.11.7"),
            Some(false),
            "3.1 is no prefix of 3.11"
        );
        assert_eq!(interpreter_satisfies("python", "3.11.7"), Some(true));
        assert_eq!(interpreter_satisfies("python>=3.6", "3.11.7"), Some(true));
        assert_eq!(interpreter_satisfies("python>=3.6,<3.10", "3.11.7"), Some(false));
        assert_eq!(interpreter_satisfies("python==3.11", "3.11.0"), Some(true));
        assert_eq!(interpreter_satisfies("python~=3.9", "3.11.0"), Some(true));
        assert_eq!(interpreter_satisfies("python 3.11.*", "3.11.0"), Some(true));
        assert_eq!(interpreter_satisfies("python=3.5.2", "not a version"), None);
        assert_eq!(interpreter_satisfies("python=3.5|3.6", "3.5.0"), None);
    }
}
