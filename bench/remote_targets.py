"""g. The remote target (SSH) with a 50 MB project: the first submit against `rsync -a` of the
same folder, resubmits of the unchanged project against a bare `ssh ... python3 empty.py`, and a
resubmit after a one-file edit against an incremental rsync. h. The cluster target (Spark over
SSH): a small PySpark job against a bare `ssh ... spark-submit` of the same file.

Needs the shared test services (`scripts/services.sh start ssh spark`): a private sshd on
127.0.0.1 with the user xptest, and a Spark standalone cluster whose spark-submit xptest can run.
`unavailable()` says why a section cannot run. Everything this section writes on the host lives
under one folder, `~/.xp-bench-<random>/`, removed at the end.
"""

import os
import re
import shlex
import shutil
import subprocess
import time
import uuid

from common import REPO, XP, BenchError, log, median, ms, plus, run

SERVICES = REPO / "scripts" / "services.sh"
PROJECT_BYTES = 50_000_000
PROJECT_FILES = 20
SNAPSHOT_LINE = re.compile(r"Snapshot: sent (\d+) of (\d+) files \((\d+) of (\d+) bytes\)")
RSYNC_SENT = re.compile(r"Total bytes sent: ([0-9.,]+)")
SSH_OPTIONS = ["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
               "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]

JOB = '''\
# Written by xp's bench: a word count over a generated list, writing nothing.
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("xp-bench-wordcount").config("spark.ui.enabled", "false").getOrCreate()
words = ("alpha beta gamma delta epsilon zeta eta theta iota kappa " * 2000).split()
counts = dict(spark.sparkContext.parallelize(words, 4).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b).collect())
print("xp-bench words", sum(counts.values()), "distinct", len(counts))
spark.stop()
'''
JOB_OUTPUT = "xp-bench words 20000 distinct 10"


def size(count):
    """Bytes, in decimal units."""
    if count >= 1_000_000:
        return "{:.1f} MB".format(count / 1e6)
    if count >= 1_000:
        return "{:.1f} kB".format(count / 1e3)
    return "{} B".format(count)


# --- availability -------------------------------------------------------------------------


def _services_env():
    """The XP_TEST_* values `scripts/services.sh env ssh spark` prints (from its state folder)."""
    done = subprocess.run(["bash", str(SERVICES), "env", "ssh", "spark"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    values = {}
    for line in done.stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            values[name] = value
    return values


def _status(component):
    """(up, the status line) from `scripts/services.sh status COMPONENT`."""
    try:
        done = subprocess.run(["bash", str(SERVICES), "status", component], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60)
    except subprocess.TimeoutExpired:
        return False, "`scripts/services.sh status {}` timed out".format(component)
    text = (done.stdout.strip() or done.stderr.strip() or "no answer").splitlines()[-1]
    return done.returncode == 0, text


def unavailable():
    """(services, why ssh cannot be used or None, why spark cannot or None). `services` holds
    the XP_TEST_* values; the spark reason is set whenever ssh is down (the cluster target
    reaches the head node over ssh)."""
    try:
        services = _services_env()
    except (OSError, subprocess.TimeoutExpired) as error:
        reason = "`scripts/services.sh env ssh spark` failed: {}".format(error)
        return {}, reason, reason
    ssh_reason = None
    up, line = _status("ssh")
    if not up:
        ssh_reason = "the test sshd is not up ({})".format(line)
    elif not services.get("XP_TEST_SSH_PORT") or not services.get("XP_TEST_SSH_KEY"):
        ssh_reason = "`scripts/services.sh env ssh` names no port or key"
    elif not os.access(services["XP_TEST_SSH_KEY"], os.R_OK):
        ssh_reason = "the test key {} is not readable".format(services["XP_TEST_SSH_KEY"])
    if ssh_reason:
        return services, ssh_reason, "needs the test sshd, which is not usable: " + ssh_reason
    spark_reason = None
    up, line = _status("spark")
    if not up:
        spark_reason = "the Spark cluster is not up ({})".format(line)
    elif not services.get("XP_TEST_SPARK_MASTER") or not services.get("XP_TEST_SPARK_SUBMIT"):
        spark_reason = "`scripts/services.sh env spark` names no master or spark-submit"
    else:
        check = subprocess.run(_ssh(services, "test -x " + shlex.quote(services["XP_TEST_SPARK_SUBMIT"])),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        if check.returncode != 0:
            spark_reason = "{} is not executable by {} on the host".format(services["XP_TEST_SPARK_SUBMIT"],
                                                                          _user(services))
    return services, None, spark_reason


def _user(services):
    return services.get("XP_TEST_SSH_USER") or "xptest"


def _host(services):
    return services.get("XP_TEST_SSH_HOST") or "127.0.0.1"


def _ssh(services, command):
    """A bare ssh command line running `command` (one shell string) as the test user."""
    return (["ssh", "-p", services["XP_TEST_SSH_PORT"], "-i", services["XP_TEST_SSH_KEY"]] + SSH_OPTIONS
            + ["{}@{}".format(_user(services), _host(services)), command])


def _ssh_write(services, path, data, env):
    """Writes `data` to `path` (relative to the test user's home) on the host."""
    folder = os.path.dirname(path)
    command = "mkdir -p {} && cat > {}".format(shlex.quote(folder), shlex.quote(path)) if folder else \
        "cat > {}".format(shlex.quote(path))
    done = subprocess.run(_ssh(services, command), input=data, env=env, capture_output=True)
    if done.returncode != 0:
        raise BenchError("writing {} on the host failed: {}".format(path, done.stderr.decode(errors="replace")))


def _run_out(cmd, cwd, env):
    """Like common.run, keeping stdout too: (wall seconds, stdout, stderr)."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - start
    stdout, stderr = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    if done.returncode != 0:
        raise BenchError("{} failed (exit code {}):\n{}".format(" ".join(map(str, cmd)), done.returncode,
                                                              (stderr.strip() or stdout.strip())[-3000:]))
    return elapsed, stdout, stderr


def ensure_rsync():
    """(rsync path or None, a note or None). Installs rsync with apt-get when it is missing and
    this runs as root; the note says so, or why there is no rsync."""
    found = shutil.which("rsync")
    if found:
        return found, None
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return None, "rsync is not installed (and this is not root with apt-get, so it was not installed)"
    log("remote: rsync is missing; installing it with apt-get (the baseline of the first submit) ...")
    apt_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = [apt, "install", "-y", "-qq", "--no-install-recommends", "rsync"]
    done = subprocess.run(install, env=apt_env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        subprocess.run([apt, "update", "-qq"], env=apt_env, stdin=subprocess.DEVNULL, capture_output=True)
        done = subprocess.run(install, env=apt_env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    found = shutil.which("rsync")
    if found is None:
        reason = (done.stderr.strip().splitlines() or ["?"])[-1]
        return None, "rsync is not installed and `apt-get install rsync` failed: {}".format(reason)
    return found, "rsync was missing; this run installed it with `apt-get install rsync`"


# --- g. remote target ---------------------------------------------------------------------


def _snapshot(stderr):
    """(sent files, files, sent bytes, bytes) from the submit's Snapshot line."""
    found = SNAPSHOT_LINE.search(stderr)
    if not found:
        raise BenchError("the submit printed no `Snapshot: sent ...` line:\n" + stderr.strip()[-3000:])
    return tuple(int(v) for v in found.groups())


def _set_remote_directory(project, target, folder):
    compute = project / "aml_config" / "{}.compute".format(target)
    text, count = re.subn(r"(?m)^remoteDirectory:.*$", "remoteDirectory: {}".format(folder), compute.read_text())
    if count != 1:
        raise BenchError("{} has no single remoteDirectory line:\n{}".format(compute, text))
    compute.write_text(text)


def _rsync(rsync, services, source, destination, cwd, env):
    """rsync -a of `source` into `destination` (relative to the home folder on the host), the
    folders xp's snapshot never carries left out. Returns (ms, bytes on the wire)."""
    shell = "ssh -p {} -i {} {}".format(services["XP_TEST_SSH_PORT"], shlex.quote(services["XP_TEST_SSH_KEY"]),
                                        " ".join(SSH_OPTIONS))
    cmd = [rsync, "-a", "--stats", "--exclude", "/.xp/", "--exclude", "/outputs/", "--exclude", "/.git/", "-e",
           shell, "{}/".format(source), "{}@{}:{}/".format(_user(services), _host(services), destination)]
    elapsed, stdout, _ = _run_out(cmd, cwd, env)
    found = RSYNC_SENT.search(stdout)
    if not found:
        raise BenchError("rsync --stats printed no `Total bytes sent`:\n" + stdout)
    return elapsed * 1000, int(re.sub(r"[^0-9]", "", found.group(1)))


def _write_blob(path, count):
    with open(path, "wb") as blob:
        blob.write(os.urandom(count))


def bench_remote(tmp, env, services, host_dir, rsync, rounds, resubmits):
    """The 50 MB project on the remote target. `host_dir`: this run's folder on the host."""
    xp = str(XP)
    project = tmp / "remote-project"
    run([xp, "-q", "init", str(project)], tmp, env)
    data = project / "data"
    data.mkdir()
    per_file = PROJECT_BYTES // PROJECT_FILES
    for i in range(PROJECT_FILES):
        _write_blob(data / "blob-{:02d}.bin".format(i), per_file)
    (project / "empty.py").write_text("pass\n")
    run([xp, "computetarget", "attach", "remote", "--name", "r", "--address",
         "{}:{}".format(_host(services), services["XP_TEST_SSH_PORT"]), "--username", _user(services),
         "--private-key-file", services["XP_TEST_SSH_KEY"], "--set",
         "remoteDirectory={}/xp-cold-0".format(host_dir)], project, env)
    # Not -q: the plugin reports what the transfer sent as a note, which -q keeps off stderr.
    submit = [xp, "experiment", "submit", "-c", "r", "empty.py"]

    # a. First submits, each with a fresh remoteDirectory (an empty cache), against rsync -a of
    # the same folder into a fresh folder; the order flips every round.
    cold = {"xp_ms": [], "xp_snapshot": [], "rsync_ms": [], "rsync_bytes": []}
    log("remote: {} round(s) of a first submit of the 50 MB project (fresh cache){} ...".format(
        rounds, " and rsync -a into a fresh folder" if rsync else ""))
    rsync_destination = None
    for i in range(rounds):
        _set_remote_directory(project, "r", "{}/xp-cold-{}".format(host_dir, i))
        steps = ["xp", "rsync"] if i % 2 == 0 else ["rsync", "xp"]
        for step in steps:
            if step == "xp":
                elapsed, stderr = run(submit, project, env)
                cold["xp_ms"].append(elapsed * 1000)
                cold["xp_snapshot"].append(_snapshot(stderr))
            elif rsync:
                rsync_destination = "{}/rsync-{}".format(host_dir, i)
                elapsed, sent = _rsync(rsync, services, project, rsync_destination, project, env)
                cold["rsync_ms"].append(elapsed)
                cold["rsync_bytes"].append(sent)

    # b. Resubmits of the unchanged project (the last cold folder holds every file), against
    # a bare ssh running the same script on the host.
    _ssh_write(services, "{}/bare/empty.py".format(host_dir), b"pass\n", env)
    bare = _ssh(services, "cd {}/bare && python3 empty.py".format(shlex.quote(host_dir)))
    timing_env = dict(env, XP_TIMINGS="1")
    warm = {"xp_ms": [], "bare_ms": [], "xp_snapshot": [], "local_copy_ms": [], "plugin_ms": []}
    log("remote: {} interleaved pairs of a resubmit (unchanged) and `ssh ... python3 empty.py` ...".format(
        resubmits))
    run(bare, project, env)  # warm-ups
    run(submit, project, timing_env)
    for i in range(resubmits):
        pair = ["bare", "xp"] if i % 2 == 0 else ["xp", "bare"]
        for side in pair:
            if side == "bare":
                warm["bare_ms"].append(run(bare, project, env)[0] * 1000)
                continue
            elapsed, stderr = run(submit, project, timing_env)
            warm["xp_ms"].append(elapsed * 1000)
            warm["xp_snapshot"].append(_snapshot(stderr))
            marks = {}
            for line in stderr.splitlines():
                found = re.match(r"^xp-timing: (.+?) ([0-9.]+) ms$", line.strip())
                if found:
                    marks[found.group(1)] = float(found.group(2))
            if {"run planned", "snapshot copied", "run recorded", "plugin returned"} <= set(marks):
                warm["local_copy_ms"].append(marks["snapshot copied"] - marks["run planned"])
                warm["plugin_ms"].append(marks["plugin returned"] - marks["run recorded"])

    # c. One file edited (new random content, same size) before each resubmit; the baseline is
    # rsync -a of the edited folder into the folder the last cold rsync filled.
    edit = {"xp_ms": [], "xp_snapshot": [], "rsync_ms": [], "rsync_bytes": [], "file_bytes": per_file}
    log("remote: {} resubmit(s) after editing one file{} ...".format(
        rounds, " and incremental rsync -a" if rsync_destination else ""))
    for i in range(rounds):
        _write_blob(data / "blob-{:02d}.bin".format((7 + i) % PROJECT_FILES), per_file)
        steps = ["xp", "rsync"] if i % 2 == 0 else ["rsync", "xp"]
        for step in steps:
            if step == "xp":
                elapsed, stderr = run(submit, project, env)
                edit["xp_ms"].append(elapsed * 1000)
                edit["xp_snapshot"].append(_snapshot(stderr))
            elif rsync_destination:
                elapsed, sent = _rsync(rsync, services, project, rsync_destination, project, env)
                edit["rsync_ms"].append(elapsed)
                edit["rsync_bytes"].append(sent)

    last = subprocess.run([xp, "history", "list", "-n", "1", "-o", "json"], cwd=project, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if '"Completed"' not in last.stdout:
        raise BenchError("the last remote run did not complete: " + (last.stdout + last.stderr).strip())
    return {"cold": cold, "warm": warm, "edit": edit, "project_bytes": per_file * PROJECT_FILES,
            "project_files": PROJECT_FILES}


# --- h. cluster target --------------------------------------------------------------------


def bench_cluster(tmp, env, services, host_dir, submits):
    xp = str(XP)
    project = tmp / "cluster-project"
    run([xp, "-q", "init", str(project)], tmp, env)
    (project / "job.py").write_text(JOB)
    master, spark_submit = services["XP_TEST_SPARK_MASTER"], services["XP_TEST_SPARK_SUBMIT"]
    run([xp, "computetarget", "attach", "cluster", "--name", "c", "--address",
         "{}:{}".format(_host(services), services["XP_TEST_SSH_PORT"]), "--username", _user(services),
         "--private-key-file", services["XP_TEST_SSH_KEY"], "--set", "sparkMaster=" + master, "--set",
         "sparkSubmitLocation=" + spark_submit, "--set", "remoteDirectory={}/xp-cluster".format(host_dir)],
        project, env)
    _ssh_write(services, "{}/bare/job.py".format(host_dir), JOB.encode(), env)
    commands = [
        ("bare", _ssh(services, "cd {}/bare && {} --master {} job.py".format(
            shlex.quote(host_dir), shlex.quote(spark_submit), shlex.quote(master)))),
        ("xp", [xp, "experiment", "submit", "-q", "-c", "c", "job.py"]),
    ]
    times = {"bare": [], "xp": []}
    log("cluster: a warm-up submit, then {} interleaved round(s) of `xp experiment submit -c c job.py` and "
        "`ssh ... spark-submit job.py` (about 15 s each) ...".format(submits))

    def job(label, cmd):
        elapsed, stdout, stderr = _run_out(cmd, project, env)
        if JOB_OUTPUT not in stdout:
            raise BenchError("{} did not print `{}`:\n{}".format(label, JOB_OUTPUT, (stdout + stderr).strip()[-3000:]))
        return elapsed * 1000

    # One warm-up, through xp: it fills xp's file cache on the host and warms what both sides
    # share (the page cache of Spark's jars and Python, the worker). One per side would add
    # another 15 s for nothing the timed runs need.
    job("xp", commands[1][1])
    for round_index in range(submits):
        ordered = commands if round_index % 2 == 0 else list(reversed(commands))
        for label, cmd in ordered:
            times[label].append(job(label, cmd))
    # xp checks spark-submit on every submit (`spark-submit --version`, a JVM start): one sample.
    log("cluster: one `ssh ... spark-submit --version` ...")
    version_ms = _run_out(_ssh(services, "{} --version".format(shlex.quote(spark_submit))), project, env)[0] * 1000
    return {"submit_ms": times, "version_ms": version_ms}


def clean_host(services, host_dir, env):
    """Removes this run's folder on the host, and the (empty) shared folders the runs made."""
    command = "rm -rf {} && {{ rmdir .azureml/share/remote-project .azureml/share/cluster-project 2>/dev/null; " \
              "true; }}".format(shlex.quote(host_dir))
    for attempt in range(3):  # the sshd may be restarting (the services are shared)
        try:
            done = subprocess.run(_ssh(services, command), env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=120)
            if done.returncode == 0:
                return
        except subprocess.TimeoutExpired:
            pass
        time.sleep(2)
    log("bench: warning: could not remove ~{}/{} on the host; remove it by hand".format(_user(services), host_dir))


def bench(tmp, env, services, run_remote, run_cluster, rounds, resubmits, spark_submits):
    """Runs the sections asked for. Returns {"remote": ..., "cluster": ..., "rsync_note": ...}."""
    host_dir = ".xp-bench-{}".format(uuid.uuid4().hex[:10])
    result = {"remote": None, "cluster": None, "rsync_note": None, "host_dir": host_dir}
    try:
        if run_remote:
            rsync, result["rsync_note"] = ensure_rsync()
            if result["rsync_note"]:
                log("remote: note: " + result["rsync_note"])
            result["remote"] = bench_remote(tmp, env, services, host_dir, rsync, rounds, resubmits)
        if run_cluster:
            result["cluster"] = bench_cluster(tmp, env, services, host_dir, spark_submits)
    finally:
        clean_host(services, host_dir, env)
    return result


# --- report -------------------------------------------------------------------------------


def _ratio(a, b):
    return "{:.2f}x".format(a / b) if b else "-"


def remote_rows(result):
    """Rows for the results table: figure, xp, baseline, added, ratio, xp peak RSS."""
    out = []
    cold, warm, edit = result["cold"], result["warm"], result["edit"]
    n = len(cold["xp_ms"])
    xp_cold = median(cold["xp_ms"])
    if cold["rsync_ms"]:
        bare = median(cold["rsync_ms"])
        out.append(["g. remote first submit, 50 MB project, median of {}".format(n), ms(xp_cold),
                    ms(bare) + " (rsync -a)", plus(xp_cold - bare), _ratio(xp_cold, bare), "-"])
    else:
        out.append(["g. remote first submit, 50 MB project, median of {}".format(n), ms(xp_cold),
                    "n/a (no rsync)", "-", "-", "-"])
    sent = max(s[2] for s in cold["xp_snapshot"])
    files = max(s[0] for s in cold["xp_snapshot"])
    rsync_sent = "{} (rsync, on the wire)".format(size(max(cold["rsync_bytes"]))) if cold["rsync_bytes"] else "-"
    out.append(["g.   bytes sent (files {} of {})".format(files, cold["xp_snapshot"][0][1]), size(sent),
                rsync_sent, "-", _ratio(sent, max(cold["rsync_bytes"])) if cold["rsync_bytes"] else "-", "-"])
    xp_warm, bare_warm = median(warm["xp_ms"]), median(warm["bare_ms"])
    out.append(["g. remote resubmit, unchanged, median of {}".format(len(warm["xp_ms"])), ms(xp_warm),
                ms(bare_warm) + " (ssh python3)", plus(xp_warm - bare_warm), _ratio(xp_warm, bare_warm), "-"])
    out.append(["g.   bytes sent (max over the resubmits)", size(max(s[2] for s in warm["xp_snapshot"])), "0 B",
                "-", "-", "-"])
    if warm["local_copy_ms"]:
        out.append(["g.   local snapshot copy (XP_TIMINGS), median", ms(median(warm["local_copy_ms"])), "-", "-",
                    "-", "-"])
        out.append(["g.   plugin (hash, ssh, run, follow), median", ms(median(warm["plugin_ms"])), "-", "-", "-",
                    "-"])
    xp_edit = median(edit["xp_ms"])
    if edit["rsync_ms"]:
        bare = median(edit["rsync_ms"])
        out.append(["g. remote resubmit, 1 file edited, median of {}".format(len(edit["xp_ms"])), ms(xp_edit),
                    ms(bare) + " (rsync -a)", plus(xp_edit - bare), _ratio(xp_edit, bare), "-"])
    else:
        out.append(["g. remote resubmit, 1 file edited, median of {}".format(len(edit["xp_ms"])), ms(xp_edit),
                    "n/a (no rsync)", "-", "-", "-"])
    sent = max(s[2] for s in edit["xp_snapshot"])
    files = max(s[0] for s in edit["xp_snapshot"])
    rsync_sent = ("{} (rsync, on the wire)".format(size(max(edit["rsync_bytes"]))) if edit["rsync_bytes"]
                  else "-")
    out.append(["g.   bytes sent (max; {} file(s); the file: {})".format(files, size(edit["file_bytes"])),
                size(sent), rsync_sent, "-", "-", "-"])
    return out


def cluster_rows(result):
    times = result["submit_ms"]
    xp_med, bare_med = median(times["xp"]), median(times["bare"])
    return [
        ["h. cluster submit job.py (PySpark word count), median of {}".format(len(times["xp"])), ms(xp_med),
         ms(bare_med) + " (ssh spark-submit)", plus(xp_med - bare_med), _ratio(xp_med, bare_med), "-"],
        ["h.   ssh spark-submit --version (xp runs it at attach and prepare only), 1 run", ms(result["version_ms"]), "-", "-",
         "-", "-"],
    ]


def verdicts(result):
    lines = []
    remote = result.get("remote")
    if remote is not None:
        warm, edit = remote["warm"], remote["edit"]
        warm_sent = [s[2] for s in warm["xp_snapshot"]]
        lines.append("remote resubmit (unchanged): sent {} bytes over {} resubmits (expected 0): {}".format(
            sum(warm_sent), len(warm_sent), "OK" if not any(warm_sent) else "UNEXPECTED"))
        edit_sent = [s[2] for s in edit["xp_snapshot"]]
        edit_files = [s[0] for s in edit["xp_snapshot"]]
        ok = all(b == edit["file_bytes"] for b in edit_sent) and all(f == 1 for f in edit_files)
        lines.append("remote resubmit (1 file edited): sent {} (expected 1 file of {} bytes each time): {}".format(
            ", ".join("{} file(s)/{} B".format(f, b) for f, b in zip(edit_files, edit_sent)), edit["file_bytes"],
            "OK" if ok else "UNEXPECTED"))
        cold_sent = [s[2] for s in remote["cold"]["xp_snapshot"]]
        total = remote["cold"]["xp_snapshot"][0][3]
        lines.append("remote first submit: sent {} of {} bytes (expected all): {}".format(
            max(cold_sent), total, "OK" if all(b == total for b in cold_sent) else "UNEXPECTED"))
    if result.get("rsync_note"):
        lines.append("rsync: " + result["rsync_note"])
    return lines
