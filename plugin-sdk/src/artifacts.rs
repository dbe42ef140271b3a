//! The one rule for what a run's `outputs/` becomes, shared by every target's collection and
//! by the host that records, downloads and promotes artifacts:
//!
//! - Regular files and real folders come back. Nothing is ever followed: a symbolic link
//!   stays a link (kept with its target text, never read through, never copied as content),
//!   and any other kind of entry (a named pipe, a socket, a device) is skipped and the run's
//!   log says so.
//! - Names are bytes. In the run's record and in messages a name is written with
//!   [`encode_name`]: UTF-8 as it is, `\\` for a backslash, `\n` `\r` `\t` and `\xHH` for other
//!   control bytes and for bytes that are not UTF-8, `\u{HHHH}` for non-ASCII control and
//!   direction-changing characters. [`decode_name`] gives the bytes back exactly.
//! - One odd entry never drops the others: each entry succeeds or is reported alone.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use xp_plugin_api::Events;

/// Starts a plugin message about entries of `outputs/` that could not be brought back
/// because of an error (a full disk, an unreadable file): the host records these lines as
/// data the run lost. Entries refused by the rule (links are kept, pipes are skipped) are
/// reported in plain messages instead.
pub const NOT_COLLECTED: &str = "outputs: not collected: ";

/// How many entries a report names one by one; the rest are counted.
pub const NAMED_IN_REPORTS: usize = 10;

/// What an entry of a folder of artifacts is, read without following anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File {
        size: u64,
    },
    /// A symbolic link, with its target as written (never resolved).
    Link {
        target: Vec<u8>,
    },
    /// Anything else: a named pipe, a socket, a device. Never read.
    Other {
        what: &'static str,
    },
}

/// One entry found under an artifacts folder; folders themselves are walked, not listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path below the walked folder, `/`-separated, as bytes.
    pub relative: Vec<u8>,
    pub kind: EntryKind,
}

/// The name of a kind of file that is not a file, a folder or a link.
pub fn describe_other(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "a named pipe"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else {
        "neither a file, a folder nor a link"
    }
}

/// Every entry under `root`, sorted by path bytes, found without following any link. An
/// unreadable folder is reported in `problems` and the walk goes on. A missing `root` has no
/// entries; a `root` that is itself a link is not walked (it is reported).
pub fn walk(root: &Path) -> (Vec<Entry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    match std::fs::symlink_metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(meta) if meta.file_type().is_symlink() => {
            problems.push(format!(
                "{} is a link, not a folder; it is not followed",
                root.display()
            ));
            return (entries, problems);
        }
        Ok(_) => {
            problems.push(format!("{} is not a folder", root.display()));
            return (entries, problems);
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => return (entries, problems),
        Err(error) => {
            problems.push(format!("reading {}: {error}", root.display()));
            return (entries, problems);
        }
    }
    let mut pending: Vec<Vec<u8>> = vec![Vec::new()];
    while let Some(folder) = pending.pop() {
        let path = join_bytes(root, &folder);
        let reader = match std::fs::read_dir(&path) {
            Ok(reader) => reader,
            Err(error) => {
                problems.push(format!("reading {}: {error}", path.display()));
                continue;
            }
        };
        for entry in reader {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    problems.push(format!("reading {}: {error}", path.display()));
                    continue;
                }
            };
            let mut relative = folder.clone();
            if !relative.is_empty() {
                relative.push(b'/');
            }
            relative.extend_from_slice(entry.file_name().as_bytes());
            // DirEntry::file_type does not follow links.
            let file_type = match entry.file_type() {
                Ok(file_type) => file_type,
                Err(error) => {
                    problems.push(format!("reading {}: {error}", entry.path().display()));
                    continue;
                }
            };
            let kind = if file_type.is_dir() {
                pending.push(relative);
                continue;
            } else if file_type.is_file() {
                EntryKind::File {
                    size: entry.metadata().map(|m| m.len()).unwrap_or(0),
                }
            } else if file_type.is_symlink() {
                let target = std::fs::read_link(entry.path())
                    .map(|t| t.into_os_string().into_encoded_bytes())
                    .unwrap_or_default();
                EntryKind::Link { target }
            } else {
                EntryKind::Other {
                    what: describe_other(&file_type),
                }
            };
            entries.push(Entry { relative, kind });
        }
    }
    entries.sort_by(|a, b| a.relative.cmp(&b.relative));
    (entries, problems)
}

/// `root` joined with a `/`-separated relative path given as bytes.
pub fn join_bytes(root: &Path, relative: &[u8]) -> PathBuf {
    if relative.is_empty() {
        root.to_path_buf()
    } else {
        root.join(OsStr::from_bytes(relative))
    }
}

/// Whether a character would mislead a reader if shown as it is: control characters and
/// those that change the direction of the text around them.
fn is_deceptive(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A name (bytes) as text that shows every byte and reads back exactly with [`decode_name`].
pub fn encode_name(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => text.push_str("\\\\"),
                '\n' => text.push_str("\\n"),
                '\r' => text.push_str("\\r"),
                '\t' => text.push_str("\\t"),
                c if c.is_ascii_control() => text.push_str(&format!("\\x{:02x}", c as u32)),
                c if is_deceptive(c) => text.push_str(&format!("\\u{{{:04x}}}", c as u32)),
                c => text.push(c),
            }
        }
        for byte in chunk.invalid() {
            text.push_str(&format!("\\x{byte:02x}"));
        }
    }
    text
}

/// The bytes of a name written by [`encode_name`]; `None` for text it could not have written
/// (a lone backslash, an unknown escape).
pub fn decode_name(text: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buffer = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            continue;
        }
        match chars.next()? {
            '\\' => bytes.push(b'\\'),
            'n' => bytes.push(b'\n'),
            'r' => bytes.push(b'\r'),
            't' => bytes.push(b'\t'),
            'x' => {
                let high = chars.next()?.to_digit(16)?;
                let low = chars.next()?.to_digit(16)?;
                bytes.push((high * 16 + low) as u8);
            }
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let mut value = 0u32;
                let mut digits = 0;
                loop {
                    let c = chars.next()?;
                    if c == '}' {
                        break;
                    }
                    value = value.checked_mul(16)?.checked_add(c.to_digit(16)?)?;
                    digits += 1;
                    if digits > 6 {
                        return None;
                    }
                }
                let c = char::from_u32(value)?;
                let mut buffer = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
            _ => return None,
        }
    }
    Some(bytes)
}

/// Whether a `/`-separated relative path stays below the folder it is relative to: no
/// absolute path, no empty, `.` or `..` component, no NUL byte.
pub fn is_plain_relative(relative: &[u8]) -> bool {
    !relative.is_empty()
        && !relative.contains(&0)
        && relative
            .split(|b| *b == b'/')
            .all(|part| !part.is_empty() && part != b"." && part != b"..")
}

/// Makes the folders of `relative` (all but its last component) under `root` (made too when
/// missing), never through a link: a component below `root` that exists as anything but a
/// real folder is an error. Returns the full path of the entry.
pub fn prepare_parents(root: &Path, relative: &[u8]) -> io::Result<PathBuf> {
    if !is_plain_relative(relative) {
        return Err(io::Error::other(format!(
            "'{}' is not a plain relative path",
            encode_name(relative)
        )));
    }
    std::fs::create_dir_all(root)?;
    let mut path = root.to_path_buf();
    let parts: Vec<&[u8]> = relative.split(|b| *b == b'/').collect();
    let (last, folders) = parts.split_last().expect("a plain path has a component");
    for part in folders {
        path.push(OsStr::from_bytes(part));
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(io::Error::other(format!(
                    "{} is a link; xp does not write through links",
                    path.display()
                )))
            }
            Ok(_) => return Err(io::Error::other(format!("{} is not a folder", path.display()))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => std::fs::create_dir(&path)?,
            Err(error) => return Err(error),
        }
    }
    path.push(OsStr::from_bytes(last));
    Ok(path)
}

/// Removes whatever is at `path` so that something else can take its place: a file or a link
/// is unlinked (a link's target is untouched), a folder is left alone (an error).
pub fn clear_place(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Err(io::Error::other(format!(
            "{} is a folder; a file of that name cannot replace it",
            path.display()
        ))),
        Ok(_) => std::fs::remove_file(path),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// What a collection of `outputs/` left out, told to the user in a bounded number of lines.
#[derive(Debug, Default)]
pub struct Report {
    /// Entries refused by the rule, with why.
    pub skipped: Vec<(Vec<u8>, String)>,
    /// Entries that an error kept from coming back, with the error.
    pub lost: Vec<(Vec<u8>, String)>,
}

impl Report {
    pub fn skip(&mut self, relative: &[u8], why: impl Into<String>) {
        self.skipped.push((relative.to_vec(), why.into()));
    }

    pub fn lose(&mut self, relative: &[u8], error: impl std::fmt::Display) {
        self.lost.push((relative.to_vec(), error.to_string()));
    }

    /// The report as messages: the first few entries of each kind by name, the rest counted.
    /// Lines about lost entries start with [`NOT_COLLECTED`].
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (relative, why) in self.skipped.iter().take(NAMED_IN_REPORTS) {
            lines.push(format!("outputs: skipped {}: {why}", shown(relative)));
        }
        if self.skipped.len() > NAMED_IN_REPORTS {
            lines.push(format!(
                "outputs: skipped {} more entries of the same kinds",
                self.skipped.len() - NAMED_IN_REPORTS
            ));
        }
        for (relative, error) in self.lost.iter().take(NAMED_IN_REPORTS) {
            lines.push(format!("{NOT_COLLECTED}{}: {error}", shown(relative)));
        }
        if self.lost.len() > NAMED_IN_REPORTS {
            lines.push(format!(
                "{NOT_COLLECTED}{} more entries of outputs/ (first error: {})",
                self.lost.len() - NAMED_IN_REPORTS,
                self.lost[NAMED_IN_REPORTS].1
            ));
        }
        lines
    }

    /// Sends [`Report::lines`] to the run's log (and the terminal) as plugin messages.
    pub fn send(&self, events: &Events<'_>) {
        for line in self.lines() {
            events.info(&line);
        }
    }
}

/// `outputs/<name>` for messages.
fn shown(relative: &[u8]) -> String {
    if relative.is_empty() {
        "outputs/".to_owned()
    } else {
        format!("outputs/{}", encode_name(relative))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_byte_exact() {
        let names: [&[u8]; 9] = [
            b"plain.txt",
            b"caf\xe9.txt",
            "café.txt".as_bytes(),
            b"a\nb",
            b"back\\slash \\xe9",
            b"\x1b[31mred",
            b"tab\there\r",
            "rtl\u{202e}txt.exe".as_bytes(),
            b"\xff\xfe\x00",
        ];
        for name in names {
            let text = encode_name(name);
            assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
            assert_eq!(decode_name(&text).as_deref(), Some(name), "{text}");
        }
        assert_eq!(encode_name(b"caf\xe9.txt"), "caf\\xe9.txt");
        assert_eq!(encode_name("café.txt".as_bytes()), "café.txt");
        assert_eq!(encode_name(b"a\nb"), "a\\nb");
        assert_eq!(decode_name("bad\\q"), None);
        assert_eq!(decode_name("trailing\\"), None);
    }

    #[test]
    fn plain_relative_paths_stay_below() {
        assert!(is_plain_relative(b"a/b.txt"));
        for bad in [
            &b""[..],
            b"/etc/passwd",
            b"../x",
            b"a/../../x",
            b"a//b",
            b"./a",
            b"a\0b",
        ] {
            assert!(!is_plain_relative(bad), "{}", encode_name(bad));
        }
    }

    #[test]
    fn the_walk_never_follows_and_sorts_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("outputs");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/b.txt"), "bb").unwrap();
        std::fs::write(root.join(OsStr::from_bytes(b"caf\xe9.txt")), "c").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("p")).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(root.join("fifo"))
            .status()
            .unwrap();
        assert!(status.success());
        let (entries, problems) = walk(&root);
        assert!(problems.is_empty(), "{problems:?}");
        let shown: Vec<(String, EntryKind)> = entries
            .into_iter()
            .map(|e| (encode_name(&e.relative), e.kind))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("caf\\xe9.txt".to_owned(), EntryKind::File { size: 1 }),
                (
                    "etc".to_owned(),
                    EntryKind::Link {
                        target: b"/etc".to_vec()
                    }
                ),
                ("fifo".to_owned(), EntryKind::Other { what: "a named pipe" }),
                (
                    "p".to_owned(),
                    EntryKind::Link {
                        target: b"/etc/passwd".to_vec()
                    }
                ),
                ("sub/b.txt".to_owned(), EntryKind::File { size: 2 }),
            ]
        );
        // A root that is itself a link is not walked.
        std::os::unix::fs::symlink("/etc", dir.path().join("linked")).unwrap();
        let (entries, problems) = walk(&dir.path().join("linked"));
        assert!(entries.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn parents_are_never_made_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("d")).unwrap();
        assert!(prepare_parents(&root, b"d/x/y.txt").is_err());
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        let made = prepare_parents(&root, b"e/f/g.txt").unwrap();
        assert_eq!(made, root.join("e/f/g.txt"));
        assert!(root.join("e/f").is_dir());
        assert!(prepare_parents(&root, b"../g.txt").is_err());
    }

    #[test]
    fn reports_name_a_few_and_count_the_rest() {
        let mut report = Report::default();
        for index in 0..10_000 {
            report.lose(format!("f{index}").as_bytes(), "No space left on device");
        }
        report.skip(b"fifo", "a named pipe; only files, folders and links come back");
        let lines = report.lines();
        assert_eq!(lines.len(), 1 + NAMED_IN_REPORTS + 1, "{lines:?}");
        assert!(lines.last().unwrap().contains("9990 more"), "{lines:?}");
        assert!(lines.iter().all(|line| line.len() < 300));
    }
}
