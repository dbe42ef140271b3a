//! Secrets of compute targets (passwords, private keys): kept in a per-user store outside the
//! project, referred to from `.compute` files as `secret:<id>`, resolved into each plugin
//! request, and scrubbed from whatever the host prints or records.

mod display;
mod redact;
mod resolve;
mod store;

use std::path::PathBuf;

pub use display::masked_settings;
pub use redact::{Redactor, MASK};
pub use resolve::{references, resolve};
pub use store::{Binding, SecretId, SecretStore, StoredSecret, SECRETS_DIR};

/// What can go wrong with secrets. No variant carries a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret store: {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("secret store: {} is not a folder; move it away so that xp can keep secrets there", path.display())]
    NotAFolder { path: PathBuf },

    #[error("secret store: {} is not text; remove it and re-attach the target that uses it", path.display())]
    NotText { path: PathBuf },

    #[error("'{id}' is not a valid secret id: use letters, digits, '-', '_' and '.', not starting with '.'")]
    BadId { id: String },

    #[error("{}: `{}` starts with `secret:` but what follows is not a valid secret id (letters, digits, '-', '_' and '.'). {}", at.compute_file.display(), at.key, at.fix())]
    BadReference { at: Box<SettingAt> },

    #[error("{}: `{}` refers to the secret '{id}', which is not in your secret store ({}). Re-attach the target to store it again: {}", at.compute_file.display(), at.key, store.display(), at.attach_command())]
    Missing {
        at: Box<SettingAt>,
        id: String,
        store: PathBuf,
    },

    #[error("{}: `{}` refers to a secret that was stored for another project or target: a stored secret serves only the project and target that stored it. Re-attach the target to store one for it: {}", at.compute_file.display(), at.key, at.attach_command())]
    NotThisProject { at: Box<SettingAt> },

    #[error("{}: `{}` holds a secret in the project folder, which is often committed; xp keeps secrets only in your own secret store. To fix, re-attach the target: {}, which stores the secret there and writes only a reference into the file (if the file was ever committed or shared, change the secret too)", at.compute_file.display(), at.key, at.attach_command())]
    Literal { at: Box<SettingAt> },
}

/// The setting of a target that an error is about.
#[derive(Debug, Clone)]
pub struct SettingAt {
    pub compute_file: PathBuf,
    pub target: String,
    pub target_type: String,
    pub key: String,
    /// The attach flag that stores the setting's secret again, as the plugin declares it.
    pub flag: Option<String>,
}

impl SettingAt {
    /// The command that stores the setting's secret again.
    fn attach_command(&self) -> String {
        format!(
            "`xp computetarget attach {} --name {} --force{}` with the options you attached it with",
            self.target_type,
            self.target,
            self.flag.as_ref().map(|flag| format!(" {flag}")).unwrap_or_default()
        )
    }

    fn fix(&self) -> String {
        format!("Re-attach the target to store the secret: {}", self.attach_command())
    }
}
