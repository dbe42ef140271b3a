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

/// Reads `<hash> <path>` lines and copies `$C/<hash>` to `<path>`, making folders and keeping
/// the mode bits. Uses only perl's core (no modules): copies, not links, so a script that
/// writes into its own files cannot change the cache.
const COPY_FROM_CACHE: &str = r#"
my $cache = $ENV{C};
my %made;
while (my $line = <STDIN>) {
    chomp $line;
    my ($hash, $path) = split / /, $line, 2;
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
    chmod((stat($in))[2] & 07777, $path);
    close($in);
}
"#;

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
            });
        }
    }
    Ok(())
}

/// Makes `run_dir` on the host hold each local folder under its prefix (`("snapshot", "work/")`),
/// sending only the files `cache_dir` on the host lacks.
pub fn sync(
    connection: &Connection,
    folders: &[(&Path, &str)],
    cache_dir: &str,
    run_dir: &str,
    cancelled: &dyn Fn() -> bool,
) -> Result<SyncReport, PluginFailure> {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for (folder, prefix) in folders {
        collect(folder, prefix, &mut files, &mut skipped)?;
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
        "mkdir -p {cache} && cd {cache} && while read -r h; do [ -f \"$h\" ] || echo \"$h\"; done",
        cache = shell_path(cache_dir)
    );
    let missing = connection.run(
        "checking the file cache",
        &query,
        Some((hashes.join("\n") + "\n").as_bytes()),
    )?;
    let missing: std::collections::HashSet<String> =
        String::from_utf8_lossy(&missing).lines().map(str::to_owned).collect();

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

    // Make the run folder from the cache: one line per file, `<hash> <path>`.
    let manifest: String = files.iter().map(|f| format!("{} {}\n", f.hash, f.remote)).collect();
    // One process copies every file (perl is part of every Debian-like base system); a
    // plain shell loop, forking mkdir and cp per file, is the fallback.
    let materialize = format!(
        "mkdir -p {run} && cd {run} && C={cache} && export C && if command -v perl >/dev/null 2>&1; then perl -e {perl}; else \
         while read -r h p; do case \"$p\" in */*) mkdir -p \"${{p%/*}}\";; esac; cp -- \"$C/$h\" \"$p\" || exit 1; done; fi",
        run = shell_path(run_dir),
        cache = shell_path(cache_dir),
        perl = quote(COPY_FROM_CACHE),
    );
    connection.run(
        "making the run's folder from the cache",
        &materialize,
        Some(manifest.as_bytes()),
    )?;
    Ok(report)
}
