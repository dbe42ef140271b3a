//! A snapshot's manifest: every path of the snapshot with its kind, mode, and (for files)
//! content hash and size. Its text form is what the history keeps and what the SSH targets'
//! remote cache reads; the manifest's own id is the SHA-256 of that text, so an unchanged
//! project gives the same id run after run.
//!
//! One line per entry, sorted by path, fields separated by one space, the path last:
//! `f <sha256> <mode> <size> <path>`, `d <mode> <path>`, `l <mode> <path>\t<target>`.
//! Modes are octal; in paths and targets `\` is written `\\`, a newline `\n` and a tab `\t`.

use std::fmt;

use sha2::{Digest, Sha256};

/// A SHA-256 content hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub fn of(bytes: &[u8]) -> Hash {
        Hash(Sha256::digest(bytes).into())
    }

    pub fn hex(&self) -> String {
        let mut text = String::with_capacity(64);
        for byte in self.0 {
            text.push(char::from_digit(u32::from(byte >> 4), 16).expect("a nibble"));
            text.push(char::from_digit(u32::from(byte & 15), 16).expect("a nibble"));
        }
        text
    }

    pub fn parse(text: &str) -> Option<Hash> {
        if text.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Hash(bytes))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File {
        hash: Hash,
        size: u64,
    },
    Dir,
    /// A link to a folder outside the project (a data set), kept as an absolute link.
    Link {
        target: Vec<u8>,
    },
}

/// One path of a snapshot, relative to its root, `/`-separated, as bytes (file names need
/// not be UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<u8>,
    /// Permission bits (`0o755`).
    pub mode: u32,
    pub kind: Kind,
}

impl Entry {
    pub fn path_text(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Sorted by path.
    pub entries: Vec<Entry>,
}

/// What a manifest holds, in a few numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct ParseError {
    pub line: usize,
    pub problem: &'static str,
}

fn escape(bytes: &[u8], out: &mut Vec<u8>) {
    for &byte in bytes {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            other => out.push(other),
        }
    }
}

fn unescape(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut iter = bytes.iter();
    while let Some(&byte) = iter.next() {
        if byte == b'\\' {
            out.push(match iter.next()? {
                b'\\' => b'\\',
                b'n' => b'\n',
                b't' => b'\t',
                _ => return None,
            });
        } else {
            out.push(byte);
        }
    }
    Some(out)
}

impl Manifest {
    pub fn new(mut entries: Vec<Entry>) -> Manifest {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries.dedup_by(|a, b| a.path == b.path);
        Manifest { entries }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * 100);
        for entry in &self.entries {
            match &entry.kind {
                Kind::File { hash, size } => {
                    out.extend_from_slice(format!("f {hash} {:o} {size} ", entry.mode).as_bytes());
                    escape(&entry.path, &mut out);
                }
                Kind::Dir => {
                    out.extend_from_slice(format!("d {:o} ", entry.mode).as_bytes());
                    escape(&entry.path, &mut out);
                }
                Kind::Link { target } => {
                    out.extend_from_slice(format!("l {:o} ", entry.mode).as_bytes());
                    escape(&entry.path, &mut out);
                    out.push(b'\t');
                    escape(target, &mut out);
                }
            }
            out.push(b'\n');
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Manifest, ParseError> {
        let mut entries = Vec::new();
        for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let fail = |problem| ParseError {
                line: index + 1,
                problem,
            };
            let mut fields = line.splitn(
                match line[0] {
                    b'f' => 5,
                    _ => 3,
                },
                |b| *b == b' ',
            );
            let tag = fields.next().ok_or(fail("empty"))?;
            let text = |field: Option<&[u8]>| -> Result<String, ParseError> {
                field
                    .and_then(|f| std::str::from_utf8(f).ok())
                    .map(str::to_owned)
                    .ok_or(fail("a field is missing"))
            };
            let kind_and_rest = match tag {
                b"f" => {
                    let hash = Hash::parse(&text(fields.next())?).ok_or(fail("not a SHA-256"))?;
                    let mode = u32::from_str_radix(&text(fields.next())?, 8).map_err(|_| fail("bad mode"))?;
                    let size = text(fields.next())?.parse().map_err(|_| fail("bad size"))?;
                    (mode, Kind::File { hash, size }, fields.next())
                }
                b"d" | b"l" => {
                    let mode = u32::from_str_radix(&text(fields.next())?, 8).map_err(|_| fail("bad mode"))?;
                    (mode, Kind::Dir, fields.next())
                }
                _ => return Err(fail("unknown entry kind")),
            };
            let (mode, mut kind, rest) = kind_and_rest;
            let rest = rest.ok_or(fail("no path"))?;
            let path = if tag == b"l" {
                let tab = rest
                    .iter()
                    .position(|b| *b == b'\t')
                    .ok_or(fail("a link without a target"))?;
                kind = Kind::Link {
                    target: unescape(&rest[tab + 1..]).ok_or(fail("bad escape"))?,
                };
                unescape(&rest[..tab]).ok_or(fail("bad escape"))?
            } else {
                unescape(rest).ok_or(fail("bad escape"))?
            };
            entries.push(Entry { path, mode, kind });
        }
        Ok(Manifest::new(entries))
    }

    /// The manifest's id: the SHA-256 of its text.
    pub fn id(&self) -> Hash {
        Hash::of(&self.encode())
    }

    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for entry in &self.entries {
            if let Kind::File { size, .. } = entry.kind {
                summary.files += 1;
                summary.bytes += size;
            }
        }
        summary
    }

    /// The distinct content hashes of its files.
    pub fn hashes(&self) -> impl Iterator<Item = Hash> + '_ {
        self.entries.iter().filter_map(|entry| match entry.kind {
            Kind::File { hash, .. } => Some(hash),
            _ => None,
        })
    }

    pub fn get(&self, path: &[u8]) -> Option<&Entry> {
        self.entries
            .binary_search_by(|entry| entry.path.as_slice().cmp(path))
            .ok()
            .map(|at| &self.entries[at])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str, mode: u32) -> Entry {
        Entry {
            path: path.as_bytes().to_vec(),
            mode,
            kind: Kind::File {
                hash: Hash::of(content.as_bytes()),
                size: content.len() as u64,
            },
        }
    }

    #[test]
    fn text_round_trips_odd_names() {
        let manifest = Manifest::new(vec![
            file("train.py", "print(1)", 0o644),
            file("a dir/new\nline\\and\ttab.txt", "x", 0o755),
            Entry {
                path: b"data".to_vec(),
                mode: 0o777,
                kind: Kind::Link {
                    target: b"/srv/data sets/\tone".to_vec(),
                },
            },
            Entry {
                path: b"a dir".to_vec(),
                mode: 0o700,
                kind: Kind::Dir,
            },
            Entry {
                path: vec![b'n', 0xff, b'x'],
                mode: 0o600,
                kind: Kind::Dir,
            },
        ]);
        let text = manifest.encode();
        assert_eq!(text.iter().filter(|b| **b == b'\n').count(), 5, "one line per entry");
        assert_eq!(Manifest::decode(&text).unwrap(), manifest);
        assert_eq!(manifest.summary(), Summary { files: 2, bytes: 9 });
        assert_eq!(manifest.id(), Manifest::decode(&text).unwrap().id());
    }

    #[test]
    fn bad_text_is_an_error_naming_the_line() {
        let error = Manifest::decode(b"d 755 ok\nf nothex 644 1 x\n").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(Manifest::decode(b"q 1 x\n").is_err());
        assert!(Manifest::decode(b"d 755 bad\\q\n").is_err());
    }

    #[test]
    fn hashes_print_as_hex_and_parse_back() {
        let hash = Hash::of(b"abc");
        assert_eq!(
            hash.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Hash::parse(&hash.hex()), Some(hash));
        assert_eq!(Hash::parse("zz"), None);
    }
}
