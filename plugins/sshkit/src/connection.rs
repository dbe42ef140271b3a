//! An SSH connection: TCP, handshake, host key verified against xp's known_hosts, and the
//! target's credentials. Errors name the host and the user, never a secret.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh2::{CheckResult, HashType, KnownHostFileKind, Session};
use xp_plugin_api::{Events, PluginFailure, Target};

use crate::address::Address;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How to log in.
#[derive(Clone)]
pub enum Credentials {
    Password(String),
    /// A private key held in the user's secret store.
    KeyInMemory {
        private_key: String,
        passphrase: Option<String>,
    },
    /// A private key file of the user's.
    KeyFile {
        path: PathBuf,
        passphrase: Option<String>,
    },
}

impl Credentials {
    /// The credentials a target's settings and resolved secrets name.
    pub fn of(target: &Target, secrets: &BTreeMap<String, String>) -> Result<Credentials, PluginFailure> {
        let passphrase = secrets.get("privateKeyPassphrase").cloned();
        if let Some(key) = secrets.get("privateKey") {
            return Ok(Credentials::KeyInMemory {
                private_key: key.clone(),
                passphrase,
            });
        }
        if let Some(path) = target.setting_str("privateKeyFile").filter(|p| !p.is_empty()) {
            return Ok(Credentials::KeyFile {
                path: xp_plugin_sdk::resolve::expand_home(path),
                passphrase,
            });
        }
        if let Some(password) = secrets.get("password") {
            return Ok(Credentials::Password(password.clone()));
        }
        Err(PluginFailure::new(format!(
            "target '{}' has no credentials: attach it with --password, -k/--use-xp-ssh-key or --private-key-file",
            target.name
        )))
    }

    fn describe(&self) -> &'static str {
        match self {
            Credentials::Password(_) => "the password was refused",
            Credentials::KeyInMemory { .. } => {
                "xp's key was refused (is its public key in ~/.ssh/authorized_keys on the host?)"
            }
            Credentials::KeyFile { .. } => {
                "the private key file was refused (is its public key in ~/.ssh/authorized_keys on the host?)"
            }
        }
    }
}

/// What the target's settings say about where to connect.
pub struct Endpoint {
    pub address: Address,
    pub username: String,
}

/// How long a blocking step may wait without any data from the host, in all: as the session's
/// own timeout.
const QUIET_LIMIT: Duration = Duration::from_secs(60);

/// Whether an error is libssh2 giving up on a quiet socket. With keepalives on, libssh2 waits
/// only until the next keepalive is due (10 s) and then reports "Timed out waiting on socket"
/// instead of sending it and waiting on: a command that prints nothing for 10 s (a JVM starting
/// under load) would fail. Such errors are retried until [`QUIET_LIMIT`].
fn is_quiet_timeout(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

/// Runs a blocking libssh2 step, retrying it while it only timed out on a quiet socket.
fn patient<T>(mut step: impl FnMut() -> Result<T, ssh2::Error>) -> std::io::Result<T> {
    let started = std::time::Instant::now();
    loop {
        match step() {
            Ok(value) => return Ok(value),
            Err(error) => {
                let error = std::io::Error::from(error);
                if !is_quiet_timeout(&error) || started.elapsed() > QUIET_LIMIT {
                    return Err(error);
                }
            }
        }
    }
}

/// Reads `stream` to its end, retrying quiet-socket timeouts (see [`patient`]).
fn read_all(stream: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut all = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let mut quiet_since = std::time::Instant::now();
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(all),
            Ok(n) => {
                all.extend_from_slice(&buffer[..n]);
                quiet_since = std::time::Instant::now();
            }
            Err(error) if is_quiet_timeout(&error) && quiet_since.elapsed() <= QUIET_LIMIT => {}
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

impl Endpoint {
    pub fn of(target: &Target) -> Result<Endpoint, PluginFailure> {
        let address = target.setting_str("address").ok_or_else(|| {
            PluginFailure::new(format!(
                "aml_config/{}.compute has no address; set it to HOST or HOST:PORT",
                target.name
            ))
        })?;
        let address = Address::parse(address)
            .map_err(|e| PluginFailure::new(format!("aml_config/{}.compute: {e}", target.name)))?;
        let username = target
            .setting_str("username")
            .filter(|u| !u.is_empty())
            .ok_or_else(|| PluginFailure::new(format!("aml_config/{}.compute has no username", target.name)))?;
        Ok(Endpoint {
            address,
            username: username.to_owned(),
        })
    }
}

pub struct Connection {
    session: Session,
    pub address: Address,
    pub username: String,
}

/// What a finished command left.
pub struct Finished {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

impl Connection {
    /// Connects, verifies the host key against `known_hosts` (recording it on first contact,
    /// with its fingerprint told through `events`), and logs in.
    pub fn open(
        endpoint: &Endpoint,
        credentials: &Credentials,
        known_hosts: &Path,
        events: Option<&Events<'_>>,
    ) -> Result<Connection, PluginFailure> {
        let address = &endpoint.address;
        let target = format!("{}@{}", endpoint.username, address);
        let addrs: Vec<_> = (address.host.as_str(), address.port)
            .to_socket_addrs()
            .map_err(|e| PluginFailure::new(format!("cannot resolve host '{}': {e}", address.host)))?
            .collect();
        let mut last_error = None;
        let mut tcp = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            PluginFailure::new(format!(
                "cannot connect to {address}: {}; is sshd running there, and is the port right?",
                last_error.map(|e| e.to_string()).unwrap_or_else(|| "no address".into())
            ))
        })?;
        // SSH writes small packets and waits for their answers (a channel's request, its EOF):
        // with Nagle's algorithm each can sit for a delayed ACK (~40 ms) on the way. OpenSSH
        // sets TCP_NODELAY on interactive sessions for the same reason.
        let _ = tcp.set_nodelay(true);
        let mut session = Session::new().map_err(|e| PluginFailure::new(format!("starting SSH: {e}")))?;
        session.set_tcp_stream(tcp);
        session.set_timeout(60_000);
        session
            .handshake()
            .map_err(|e| PluginFailure::new(format!("SSH handshake with {address} failed: {}", e.message())))?;
        verify_host_key(&session, address, known_hosts, events)?;
        let user = endpoint.username.as_str();
        let result = match credentials {
            Credentials::Password(password) => session.userauth_password(user, password),
            Credentials::KeyInMemory {
                private_key,
                passphrase,
            } => session.userauth_pubkey_memory(user, None, private_key, passphrase.as_deref()),
            Credentials::KeyFile { path, passphrase } => {
                if !path.is_file() {
                    return Err(PluginFailure::new(format!(
                        "private key file {} does not exist",
                        path.display()
                    )));
                }
                session.userauth_pubkey_file(user, None, path, passphrase.as_deref())
            }
        };
        if result.is_err() || !session.authenticated() {
            return Err(PluginFailure::new(format!(
                "authentication as {target} failed: {}",
                credentials.describe()
            )));
        }
        session.set_keepalive(true, 10);
        Ok(Connection {
            session,
            address: address.clone(),
            username: endpoint.username.clone(),
        })
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Says goodbye to the host without waiting for its answer: dropping a session whose
    /// peer is not told takes libssh2 a while.
    pub fn close(self) {
        self.session.set_blocking(false);
        let _ = self.session.disconnect(None, "xp is done", None);
    }

    /// Runs `command` in the login shell's home folder, feeding `stdin`, and waits for it.
    pub fn exec(&self, command: &str, stdin: Option<&[u8]>) -> Result<Finished, PluginFailure> {
        let lost =
            |e: &dyn std::fmt::Display| PluginFailure::new(format!("the connection to {} failed: {e}", self.address));
        self.session.set_blocking(true);
        let mut channel = self.session.channel_session().map_err(|e| lost(&e))?;
        channel.exec(command).map_err(|e| lost(&e))?;
        if let Some(bytes) = stdin {
            channel.write_all(bytes).map_err(|e| lost(&e))?;
        }
        channel.send_eof().map_err(|e| lost(&e))?;
        // Bytes first: a script's output need not be UTF-8, and read_to_string would drop it all.
        let stdout = read_all(&mut channel).map_err(|e| lost(&e))?;
        let stderr = read_all(&mut channel.stderr()).unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        patient(|| channel.wait_close()).map_err(|e| lost(&e))?;
        let status = channel.exit_status().map_err(|e| lost(&e))?;
        Ok(Finished { status, stdout, stderr })
    }

    /// Runs `command` (with `2>&1` added) feeding `stdin`, calling `line` for each line of its
    /// output as it comes. Returns the exit status and the last lines, for errors. When
    /// `cancelled` turns true the command's channel is closed and the call fails.
    pub fn exec_lines(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        line: &mut dyn FnMut(&str),
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(i32, Vec<String>), PluginFailure> {
        let lost =
            |e: &dyn std::fmt::Display| PluginFailure::new(format!("the connection to {} failed: {e}", self.address));
        self.session.set_blocking(true);
        let mut channel = self.session.channel_session().map_err(|e| lost(&e))?;
        channel.exec(&format!("{command} 2>&1")).map_err(|e| lost(&e))?;
        if let Some(bytes) = stdin {
            channel.write_all(bytes).map_err(|e| lost(&e))?;
        }
        channel.send_eof().map_err(|e| lost(&e))?;
        // Reads time out every quarter second so that a cancel is seen during long commands.
        self.session.set_timeout(250);
        let mut last: Vec<String> = Vec::new();
        let mut pending = Vec::new();
        let mut buffer = vec![0u8; 16 * 1024];
        let outcome = loop {
            if cancelled() {
                let _ = channel.close();
                break Err(PluginFailure::new("cancelled; the command on the host was stopped"));
            }
            match channel.read(&mut buffer) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    pending.extend_from_slice(&buffer[..n]);
                    while let Some(at) = pending.iter().position(|b| *b == b'\n') {
                        let bytes: Vec<u8> = pending.drain(..=at).collect();
                        let text = String::from_utf8_lossy(&bytes);
                        let trimmed = text.trim_end();
                        line(trimmed);
                        last.push(trimmed.to_owned());
                        if last.len() > 15 {
                            last.remove(0);
                        }
                    }
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                    ) => {}
                Err(error) => break Err(lost(&error)),
            }
        };
        self.session.set_timeout(60_000);
        outcome?;
        if !pending.is_empty() {
            let text = String::from_utf8_lossy(&pending).into_owned();
            line(text.trim_end());
            last.push(text.trim_end().to_owned());
        }
        channel.wait_close().map_err(|e| lost(&e))?;
        let status = channel.exit_status().map_err(|e| lost(&e))?;
        Ok((status, last))
    }

    /// Runs `command` and fails with `what` and its error output unless it exits 0.
    pub fn run(&self, what: &str, command: &str, stdin: Option<&[u8]>) -> Result<Vec<u8>, PluginFailure> {
        let finished = self.exec(command, stdin)?;
        if finished.status != 0 {
            let detail = finished.stderr.trim();
            let hint = if detail.contains("No space left on device") {
                " (the host's disk is full: free space there and run again)"
            } else {
                ""
            };
            return Err(PluginFailure::new(format!(
                "{what} on {} failed: {detail}{hint}",
                self.address
            )));
        }
        Ok(finished.stdout)
    }

    /// Writes `bytes` to `path` on the host (relative to the home folder) through SFTP.
    pub fn write_file(&self, sftp: &ssh2::Sftp, path: &str, bytes: &[u8]) -> Result<(), PluginFailure> {
        let fail = |e: &dyn std::fmt::Display| {
            let text = e.to_string();
            let hint = if text.contains("no space") || text.contains("No space") || text.contains("failure") {
                " (is the host's disk full?)"
            } else {
                ""
            };
            PluginFailure::new(format!("writing {path} on {}: {text}{hint}", self.address))
        };
        let mut file = sftp.create(Path::new(path)).map_err(|e| fail(&e))?;
        file.write_all(bytes).map_err(|e| fail(&e))?;
        file.close().map_err(|e| fail(&e))?;
        Ok(())
    }
}

fn verify_host_key(
    session: &Session,
    address: &Address,
    known_hosts: &Path,
    events: Option<&Events<'_>>,
) -> Result<(), PluginFailure> {
    let (key, key_type) = session
        .host_key()
        .ok_or_else(|| PluginFailure::new(format!("{address} sent no host key")))?;
    let fingerprint = session
        .host_key_hash(HashType::Sha256)
        .map(|hash| format!("SHA256:{}", base64(hash).trim_end_matches('=')))
        .unwrap_or_else(|| "(unknown)".into());
    let failure = |e: ssh2::Error| PluginFailure::new(format!("reading {}: {}", known_hosts.display(), e.message()));
    // One writer at a time: concurrent first contacts must not lose each other's lines.
    if let Some(parent) = known_hosts.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| PluginFailure::new(format!("creating {}: {e}", parent.display())))?;
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(known_hosts.with_extension("lock"))
        .map_err(|e| PluginFailure::new(format!("locking {}: {e}", known_hosts.display())))?;
    lock.lock()
        .map_err(|e| PluginFailure::new(format!("locking {}: {e}", known_hosts.display())))?;
    let mut known = session.known_hosts().map_err(failure)?;
    if known_hosts.exists() {
        known
            .read_file(known_hosts, KnownHostFileKind::OpenSSH)
            .map_err(failure)?;
    }
    match known.check_port(&address.host, address.port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::NotFound => {
            known
                .add(&address.known_hosts_name(), key, "recorded by xp", key_type.into())
                .map_err(failure)?;
            known.write_file(known_hosts, KnownHostFileKind::OpenSSH).map_err(failure)?;
            if let Some(events) = events {
                events.info(&format!(
                    "First contact with {address}: recorded its host key {fingerprint} in {}",
                    known_hosts.display()
                ));
            }
            Ok(())
        }
        CheckResult::Mismatch => Err(PluginFailure::new(format!(
            "the host key of {address} has CHANGED: it is now {fingerprint}, not the key recorded in {}. Someone may be intercepting the connection; xp refuses to connect. If the host was reinstalled on purpose, delete the line for {} from that file and connect again to record the new key.",
            known_hosts.display(),
            address.known_hosts_name()
        ))),
        CheckResult::Failure => Err(PluginFailure::new(format!("checking the host key of {address} failed"))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(super::base64(b"hello world"), "aGVsbG8gd29ybGQ");
        assert_eq!(super::base64(&[0xfb, 0xff]), "+/8");
    }
}
