//! The incremental snapshot transfer. Files are cached on the host by content hash
//! (`<base>/cache/<sha256>`): only files the host has never seen travel, so an unchanged
//! project sends nothing and a one-file edit sends one file. The run's folder is then made on
//! the host from the cache.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use xp_plugin_api::PluginFailure;

use crate::connection::Connection;
use crate::quote::{quote, shell_path};

/// Reads `<hash> <mode> <path>` lines and copies `$C/<hash>` to `<path>`, making folders and
/// setting the mode; after a [`WRAPPER_MARKER`] line, the rest of the input is the run's
/// wrapper script, written to `xp-run.sh`. Uses only perl's core (no modules): reflinks
/// (copy-on-write clones, where the host's file system has them) or copies, never links, so a
/// script that writes into its own files cannot change the cache.
const COPY_FROM_CACHE: &str = r#"
my $cache = $ENV{C};
my %made;
my $clone = 1;
while (my $line = <STDIN>) {
    chomp $line;
    if ($line eq "\x{1e}xp-wrapper") {
        local $/;
        my $script = <STDIN>;
        open(my $out, ">", "xp-run.sh") or die "writing xp-run.sh: $!\n";
        print $out $script;
        close($out) or die "writing xp-run.sh: $!\n";
        last;
    }
    my ($hash, $mode, $path) = split / /, $line, 3;
    my @parts = split m{/}, $path;
    pop @parts;
    my $dir = "";
    for my $part (@parts) {
        $dir = $dir eq "" ? $part : "$dir/$part";
        next if $made{$dir}++;
        mkdir $dir unless -d $dir;
    }
    open(my $in, "<:raw", "$cache/$hash") or die "reading the cache entry of $path: $!\n";
    open(my $out, ">:raw", $path) or die "writing $path: $!\n";
    # FICLONE; refused once (ext4, another device), never asked again.
    if ($clone && ioctl($out, 0x40049409, fileno($in))) {
        close($out) or die "writing $path: $!\n";
        chmod(oct($mode), $path);
        next;
    }
    $clone = 0;
    my $buffer;
    while (1) {
        my $read = sysread($in, $buffer, 1 << 20);
        die "reading $path: $!\n" unless defined $read;
        last if $read == 0;
        my $offset = 0;
        while ($offset < $read) {
            my $written = syswrite($out, $buffer, $read - $offset, $offset);
            die "writing $path: $!\n" unless defined $written;
            $offset += $written;
        }
    }
    close($out) or die "writing $path: $!\n";
    chmod(oct($mode), $path);
    close($in);
}
"#;

/// The line after which the run folder's input is the wrapper script.
const WRAPPER_MARKER: &str = "\u{1e}xp-wrapper";

/// What a transfer did.
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    pub files: usize,
    pub bytes: u64,
    pub sent_files: usize,
    pub sent_bytes: u64,
    /// Links to folders that did not travel.
    pub skipped_links: Vec<String>,
}

struct LocalFile {
    path: PathBuf,
    /// Where it goes, relative to the run folder.
    remote: String,
    hash: String,
    size: u64,
    mode: u32,
}

/// A local folder to send, under `prefix` (`work/`) in the run's folder.
pub struct Folder<'a> {
    pub path: &'a Path,
    pub prefix: &'a str,
    /// The folder's manifest (see the host's `RunRequest::snapshot_manifest`): its hashes are
    /// used as they are, so nothing is read but what must travel.
    pub manifest: Option<&'a Path>,
}

/// One transfer: the run's folder made on the host from the cache.
pub struct Transfer<'a> {
    pub folders: &'a [Folder<'a>],
    pub cache_dir: &'a str,
    pub run_dir: &'a str,
    /// Shell commands run first, in the cache query's command (one round trip for both); they
    /// must exit 0; exit code 3 fails the transfer with their error output as the message.
    pub preflight: Option<&'a str>,
    /// A command to run in the run's folder once it is made, in the same command, with the
    /// wrapper script to write there first (`xp-run.sh`).
    pub start: Option<(&'a str, &'a str)>,
}

fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((hasher.finalize().iter().map(|b| format!("{b:02x}")).collect(), size))
}

fn collect(
    folder: &Path,
    prefix: &str,
    files: &mut Vec<LocalFile>,
    skipped: &mut Vec<String>,
) -> Result<(), PluginFailure> {
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| PluginFailure::new(format!("reading {}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)
                .map_err(|e| PluginFailure::new(format!("reading {}: {e}", path.display())))?;
            if meta.is_dir() {
                pending.push(path);
                continue;
            }
            if meta.file_type().is_symlink() {
                // The snapshot keeps links only to folders outside the project (data sets):
                // they do not travel; the script on the host must find its data there.
                skipped.push(path.strip_prefix(folder).unwrap_or(&path).display().to_string());
                continue;
            }
            let relative = path
                .strip_prefix(folder)
                .expect("inside the folder")
                .to_string_lossy()
                .into_owned();
            if relative.contains('\n') || relative.contains('\t') {
                return Err(PluginFailure::new(format!(
                    "{} has a tab or newline in its name, which the transfer cannot carry; rename it or ignore it in .amlignore",
                    path.display()
                )));
            }
            let (hash, size) =
                hash_file(&path).map_err(|e| PluginFailure::new(format!("reading {}: {e}", path.display())))?;
            files.push(LocalFile {
                path,
                remote: format!("{prefix}{relative}"),
                hash,
                size,
                mode: std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
            });
        }
    }
    Ok(())
}

fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(match chars.next()? {
                '\\' => '\\',
                'n' => '\n',
                't' => '\t',
                _ => return None,
            });
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The files of `folder` as its manifest lists them; None when the manifest cannot be read
/// (then the folder is read and hashed instead).
fn from_manifest(folder: &Folder<'_>, files: &mut Vec<LocalFile>, skipped: &mut Vec<String>) -> Option<()> {
    let text = std::fs::read_to_string(folder.manifest?).ok()?;
    let mut found = Vec::new();
    for line in text.lines() {
        let (tag, rest) = line.split_once(' ')?;
        match tag {
            "f" => {
                let mut fields = rest.splitn(4, ' ');
                let hash = fields.next()?.to_owned();
                let mode = u32::from_str_radix(fields.next()?, 8).ok()?;
                let size = fields.next()?.parse().ok()?;
                let relative = unescape(fields.next()?)?;
                if hash.len() != 64 || relative.contains(['\n', '\t']) {
                    return None;
                }
                found.push(LocalFile {
                    path: folder.path.join(&relative),
                    remote: format!("{}{relative}", folder.prefix),
                    hash,
                    size,
                    mode,
                });
            }
            "l" => {
                let (_, path) = rest.split_once(' ')?;
                skipped.push(unescape(path.split('\t').next()?)?);
            }
            "d" => {}
            _ => return None,
        }
    }
    files.extend(found);
    Some(())
}

/// Makes the run's folder on the host as `spec` says: one command for the preflight and the
/// cache query, the missing files over SFTP, one command that makes the folder from the
/// cache (and starts the run, when asked).
pub fn transfer(
    connection: &Connection,
    spec: &Transfer<'_>,
    cancelled: &dyn Fn() -> bool,
) -> Result<SyncReport, PluginFailure> {
    let (cache_dir, run_dir) = (spec.cache_dir, spec.run_dir);
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for folder in spec.folders {
        let mut listed = Vec::new();
        let mut links = Vec::new();
        if from_manifest(folder, &mut listed, &mut links).is_some() {
            files.extend(listed);
            skipped.extend(links);
        } else {
            collect(folder.path, folder.prefix, &mut files, &mut skipped)?;
        }
    }
    let mut report = SyncReport {
        files: files.len(),
        bytes: files.iter().map(|f| f.size).sum(),
        skipped_links: skipped,
        ..SyncReport::default()
    };

    // Which contents does the host lack?
    let mut hashes: Vec<&str> = files.iter().map(|f| f.hash.as_str()).collect();
    hashes.sort();
    hashes.dedup();
    let query = format!(
        "{preflight}mkdir -p {cache} && cd {cache} && while read -r h; do [ -f \"$h\" ] || echo \"$h\"; done",
        preflight = spec.preflight.map(|p| format!("{p}\n")).unwrap_or_default(),
        cache = shell_path(cache_dir)
    );
    let asked = (hashes.join("\n") + "\n").into_bytes();
    let missing = if spec.preflight.is_some() {
        // A preflight that fails says why itself (exit code 3, its message on stderr).
        let finished = connection.exec(&query, Some(&asked))?;
        if finished.status == 3 && !finished.stderr.trim().is_empty() {
            return Err(PluginFailure::new(finished.stderr.trim()));
        }
        if finished.status != 0 {
            return Err(PluginFailure::new(format!(
                "checking the file cache on {} failed: {}",
                connection.address,
                finished.stderr.trim()
            )));
        }
        finished.stdout
    } else {
        connection.run("checking the file cache", &query, Some(&asked))?
    };
    let missing: std::collections::HashSet<String> =
        String::from_utf8_lossy(&missing).lines().map(str::to_owned).collect();
    xp_plugin_sdk::timing::mark("host's file cache checked");

    if !missing.is_empty() {
        let sftp = connection
            .session()
            .sftp()
            .map_err(|e| PluginFailure::new(format!("opening SFTP to {}: {e}", connection.address)))?;
        let mut sent = std::collections::HashSet::new();
        for file in files.iter().filter(|f| missing.contains(&f.hash)) {
            if !sent.insert(file.hash.clone()) {
                continue;
            }
            if cancelled() {
                return Err(PluginFailure::new("cancelled while sending the snapshot"));
            }
            let bytes = std::fs::read(&file.path)
                .map_err(|e| PluginFailure::new(format!("reading {}: {e}", file.path.display())))?;
            // Written under a temporary name and renamed: a transfer cut short never leaves a
            // cache entry with the wrong content.
            let temporary = format!("{cache_dir}/.{}.{}", file.hash, std::process::id());
            connection.write_file(&sftp, &temporary, &bytes)?;
            let stored = Path::new(&format!("{cache_dir}/{}", file.hash)).to_path_buf();
            if let Err(error) = sftp.rename(
                Path::new(&temporary),
                &stored,
                Some(ssh2::RenameFlags::OVERWRITE | ssh2::RenameFlags::ATOMIC | ssh2::RenameFlags::NATIVE),
            ) {
                // OpenSSH's SFTP does not overwrite: another run stored the same content
                // meanwhile, which is as good.
                let _ = sftp.unlink(Path::new(&temporary));
                if sftp.stat(&stored).is_err() {
                    return Err(PluginFailure::new(format!(
                        "storing {} in the cache on {}: {error}",
                        file.remote, connection.address
                    )));
                }
            }
            report.sent_files += 1;
            report.sent_bytes += file.size;
        }
    }

    // Make the run folder from the cache: one line per file, `<hash> <mode> <path>`, then
    // the wrapper script when the run starts in the same command.
    let mut input: String = files
        .iter()
        .map(|f| format!("{} {:o} {}\n", f.hash, f.mode, f.remote))
        .collect();
    if let Some((_, script)) = spec.start {
        input.push_str(WRAPPER_MARKER);
        input.push('\n');
        input.push_str(script);
    }
    // One process copies every file (perl is part of every Debian-like base system); a
    // plain shell loop, forking mkdir and cp per file, is the fallback.
    let materialize = format!(
        "mkdir -p {run} && cd {run} && C={cache} && export C && if command -v perl >/dev/null 2>&1; then perl -e {perl}; else \
         while read -r h m p; do [ \"$h\" = \"$(printf '\\036')xp-wrapper\" ] && {{ cat > xp-run.sh; break; }}; \
         case \"$p\" in */*) mkdir -p \"${{p%/*}}\";; esac; cp -- \"$C/$h\" \"$p\" && chmod \"$m\" \"$p\" || exit 1; done; fi{start}",
        run = shell_path(run_dir),
        cache = shell_path(cache_dir),
        perl = quote(COPY_FROM_CACHE),
        start = spec.start.map(|(command, _)| format!(" && {command}")).unwrap_or_default(),
    );
    connection.run(
        if spec.start.is_some() {
            "making the run's folder from the cache and starting the run"
        } else {
            "making the run's folder from the cache"
        },
        &materialize,
        Some(input.as_bytes()),
    )?;
    Ok(report)
}
