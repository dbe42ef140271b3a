//! The content hash that names a cached environment.
//!
//! FNV-1a with a 128-bit state: small, dependency-free and stable across Rust releases (unlike
//! `std`'s `DefaultHasher`, whose algorithm is not guaranteed). It names cache folders; it is
//! not meant to resist someone crafting collisions.

use std::io::Read;
use std::path::Path;

const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
const PRIME: u128 = 0x0000000001000000000000000000013b;

pub struct Fingerprint {
    state: u128,
}

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint { state: OFFSET }
    }
}

impl Fingerprint {
    pub fn bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.state ^= u128::from(byte);
            self.state = self.state.wrapping_mul(PRIME);
        }
    }

    /// Adds a labelled field. Lengths go in first, so `("ab", "c")` and `("a", "bc")` differ.
    pub fn field(&mut self, label: &str, value: &[u8]) {
        for part in [label.as_bytes(), value] {
            self.bytes(&(part.len() as u64).to_le_bytes());
            self.bytes(part);
        }
    }

    /// Adds a file's contents.
    pub fn file(&mut self, label: &str, path: &Path) -> std::io::Result<()> {
        let mut file = std::fs::File::open(path)?;
        let length = file.metadata()?.len();
        self.field(label, &length.to_le_bytes());
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                return Ok(());
            }
            self.bytes(&buffer[..read]);
        }
    }

    /// The first 64 bits, as 16 hex digits: enough to tell environments apart.
    pub fn hex(&self) -> String {
        format!("{:016x}", (self.state >> 64) as u64 ^ self.state as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_delimited_and_order_matters() {
        let hash = |fields: &[(&str, &str)]| {
            let mut fingerprint = Fingerprint::default();
            for (label, value) in fields {
                fingerprint.field(label, value.as_bytes());
            }
            fingerprint.hex()
        };
        assert_eq!(hash(&[("pip", "a")]), hash(&[("pip", "a")]));
        assert_ne!(
            hash(&[("pip", "ab"), ("pip", "c")]),
            hash(&[("pip", "a"), ("pip", "bc")])
        );
        assert_ne!(hash(&[("pip", "a"), ("pip", "b")]), hash(&[("pip", "b"), ("pip", "a")]));
        assert_eq!(hash(&[]).len(), 16);
    }
}
