//! Key pairs for `--use-xp-ssh-key`: made with the machine's `ssh-keygen` (OpenSSH format,
//! ed25519), returned in memory; the caller hands the private key to the host's secret store.

use std::process::Command;

use xp_plugin_api::PluginFailure;

pub struct KeyPair {
    pub private_key: String,
    /// One line: `ssh-ed25519 AAAA... comment`.
    pub public_key: String,
}

pub fn generate(comment: &str) -> Result<KeyPair, PluginFailure> {
    let dir = std::env::temp_dir().join(format!(
        "xp-keygen-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| PluginFailure::new(format!("making a folder for ssh-keygen: {e}")))?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    let path = dir.join("key");
    let result = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(&path)
        .output();
    let outcome = match result {
        Err(error) => Err(PluginFailure::new(format!(
            "generating a key pair needs ssh-keygen (OpenSSH's client tools), which could not run: {error}"
        ))),
        Ok(output) if !output.status.success() => Err(PluginFailure::new(format!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))),
        Ok(_) => {
            let private_key = std::fs::read_to_string(&path);
            let public_key = std::fs::read_to_string(path.with_extension("pub"));
            match (private_key, public_key) {
                (Ok(private_key), Ok(public_key)) => Ok(KeyPair {
                    private_key,
                    public_key: public_key.trim().to_owned(),
                }),
                _ => Err(PluginFailure::new("ssh-keygen wrote no key pair")),
            }
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

#[cfg(test)]
mod tests {
    #[test]
    fn makes_an_ed25519_pair() {
        let pair = super::generate("xp-test").unwrap();
        assert!(pair.private_key.contains("OPENSSH PRIVATE KEY"));
        assert!(pair.public_key.starts_with("ssh-ed25519 ") && pair.public_key.ends_with("xp-test"));
    }
}
