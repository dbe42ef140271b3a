#!/usr/bin/env python3
"""Benchmarks of the `xp` binary, each figure against a baseline measured side by side.

Builds nothing: run `cargo build --release --workspace` first. See bench/README.md.
"""

import argparse
import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__/ in bench/ for the modules below

from common import (LOCAL_PLUGIN, RELEASE, REPO, SEEDER, XP, BenchError, log, mb, median, ms,  # noqa: E402
                    output_of, p90, plus, run, run_peak)
import docker_target  # noqa: E402
import follow  # noqa: E402
import remote_targets  # noqa: E402

SUBMIT_TARGET_MS = 10.0
TIMING_LINE = re.compile(r"^xp-timing: (.+?) ([0-9.]+) ms$")


def check_build():
    missing = [path for path in (XP, SEEDER, LOCAL_PLUGIN) if not path.exists()]
    if missing:
        log("bench: missing " + ", ".join(str(p) for p in missing))
        log("bench: build first, from {}:  cargo build --release --workspace".format(REPO))
        sys.exit(2)


def warn_if_stale():
    """A benchmark of an old build misleads: warn when a source is newer than every binary the
    build makes (cargo relinks only what a change touches, so compare with the newest)."""
    artifacts = [XP, SEEDER] + list(RELEASE.glob("libxp_plugin_*.so"))
    built = max(path.stat().st_mtime for path in artifacts if path.exists())
    newest, newest_path = 0.0, None
    for folder in ("host", "plugin-api", "plugins"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix in (".rs", ".toml") and "target" not in path.parts:
                mtime = path.stat().st_mtime
                if mtime > newest:
                    newest, newest_path = mtime, path
    if newest > built:
        log("bench: warning: {} is newer than the binaries in {}; rebuild with "
            "`cargo build --release --workspace`".format(newest_path.relative_to(REPO), RELEASE))


def resolve_python(requested):
    """The real interpreter binary behind `requested` (default python3 on PATH). Shims such as
    pyenv's are shell scripts that cost tens of milliseconds a start, so ask the interpreter
    itself where it lives, as sys.executable does."""
    candidate = shutil.which(requested) if requested else shutil.which("python3")
    if candidate is None:
        if requested:
            raise BenchError("--python {}: not found".format(requested))
        return os.path.realpath(sys.executable)
    real = subprocess.run([candidate, "-c", "import sys; print(sys.executable)"], capture_output=True,
                          text=True)
    if real.returncode != 0 or not real.stdout.strip():
        raise BenchError("{} -c 'import sys; print(sys.executable)' failed: {}".format(candidate,
                                                                                        real.stderr.strip()))
    return os.path.realpath(real.stdout.strip())


def isolated_env(tmp):
    env = dict(os.environ)
    for name in ("XP_TIMINGS", "XP_PLUGIN_PATH", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        env.pop(name, None)
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    env["XP_HOME"] = str(tmp / "xp-home")
    return env


def make_submit_project(tmp, env, python):
    project = tmp / "submit-project"
    run([str(XP), "-q", "init", str(project)], cwd=tmp, env=env)
    compute = project / "aml_config" / "local.compute"
    text = compute.read_text()
    line = "pythonLocation: {}".format(json.dumps(python))
    text, count = re.subn(r"(?m)^pythonLocation:.*$", line, text)
    if count == 0:
        text += "\n" + line + "\n"
    compute.write_text(text)
    (project / "empty.py").write_text("pass\n")
    (project / "sleep.py").write_text("import time\ntime.sleep(0.5)\n")
    return project


# --- a. submit overhead -------------------------------------------------------------------


def bench_submit(project, env, python, iterations):
    bare = [python, "empty.py"]
    submit = [str(XP), "experiment", "submit", "-q", "-c", "local", "empty.py"]
    for _ in range(3):  # warm the page cache, the plugin's library, Python's .pyc files
        run(bare, project, env)
        run(submit, project, env)
    bare_times, xp_times = [], []
    for i in range(iterations):
        pair = [(bare, bare_times), (submit, xp_times)]
        if i % 2:
            pair.reverse()  # alternate the order so neither side always runs first
        for cmd, times in pair:
            times.append(run(cmd, project, env)[0] * 1000)
    last = json.loads(output_of([str(XP), "history", "last", "-o", "json"], project, env))
    if last.get("status") != "Completed":
        raise BenchError("the last submitted run is {}, not Completed: {}".format(last.get("status"), last))
    return {"bare_ms": bare_times, "xp_ms": xp_times}


# --- b. plugin load time and phases -------------------------------------------------------


def parse_timings(stderr):
    marks = []
    for line in stderr.splitlines():
        found = TIMING_LINE.match(line.strip())
        if found:
            marks.append((found.group(1), float(found.group(2))))
    return marks


def bench_phases(project, env, iterations):
    timing_env = dict(env, XP_TIMINGS="1")
    submit = [str(XP), "experiment", "submit", "-q", "-c", "local", "empty.py"]
    loads, walls = [], []
    phases = {}  # label -> list of (ms since previous mark)
    order = []
    for _ in range(iterations):
        wall, stderr = run(submit, project, timing_env)
        walls.append(wall * 1000)
        marks = dict(parse_timings(stderr))
        if "plugin found" not in marks or "plugin loaded" not in marks:
            raise BenchError("XP_TIMINGS=1 printed no 'plugin found'/'plugin loaded' marks:\n" + stderr)
        loads.append(marks["plugin loaded"] - marks["plugin found"])
        previous = 0.0
        for label, ms in parse_timings(stderr):
            if label not in phases:
                phases[label] = []
                order.append(label)
            phases[label].append(ms - previous)
            previous = ms
        phases.setdefault("(after last mark, incl. exec and exit)", []).append(wall * 1000 - previous)
    if "(after last mark, incl. exec and exit)" not in order:
        order.append("(after last mark, incl. exec and exit)")
    return {"plugin_load_ms": loads, "wall_ms": walls, "phases": [(label, phases[label]) for label in order]}


# --- c. host memory -----------------------------------------------------------------------


def proc_status(pid):
    """VmHWM and VmRSS in kB from /proc/<pid>/status, or None once the process is gone."""
    try:
        text = Path("/proc/{}/status".format(pid)).read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0])
    return values if "VmHWM" in values else None  # a zombie has no memory lines


def children(pid):
    try:
        tasks = os.listdir("/proc/{}/task".format(pid))
    except OSError:
        return []
    found = []
    for task in tasks:
        try:
            found += [int(c) for c in Path("/proc/{}/task/{}/children".format(pid, task)).read_text().split()]
        except OSError:
            return scan_children(pid)  # kernels without CONFIG_PROC_CHILDREN
    return found


def scan_children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc/{}/stat".format(entry)).read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def bench_memory(project, env, repeats):
    submit = [str(XP), "experiment", "submit", "-q", "-c", "local", "sleep.py"]
    results = []
    for _ in range(repeats):
        process = subprocess.Popen(submit, cwd=project, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        host = {"VmHWM": 0, "VmRSS": 0}  # VmRSS: the largest sample taken while the script ran
        child = {"VmHWM": 0, "VmRSS": 0}
        child_seen = False
        while process.poll() is None:
            host_status = proc_status(process.pid)
            script_running = False
            for pid in children(process.pid):
                status = proc_status(pid)
                if status:
                    child_seen = script_running = True
                    for key in child:
                        child[key] = max(child[key], status.get(key, 0))
            if host_status:
                # VmHWM only grows, so the last sample before exit holds the peak.
                host["VmHWM"] = max(host["VmHWM"], host_status["VmHWM"])
                if script_running:
                    host["VmRSS"] = max(host["VmRSS"], host_status.get("VmRSS", 0))
            time.sleep(0.005)
        stderr = process.stderr.read().decode(errors="replace")
        process.stderr.close()
        if process.returncode != 0:
            raise BenchError("xp submit sleep.py failed (exit code {}):\n{}".format(process.returncode, stderr))
        if not child_seen:
            raise BenchError("never saw the python child of xp while sleep.py ran")
        results.append({"xp": host, "python": child})
    return results


# --- d. history at scale ------------------------------------------------------------------


QUERY = "length([?status=='Failed'])"


def bench_history(tmp, env, runs, metrics, reps, query_reps):
    project = tmp / "history-project"
    log("history: seeding {} runs and {} metric points ...".format(runs, metrics))
    start = time.perf_counter()
    seeded = subprocess.run([str(SEEDER), "--project", str(project), "--runs", str(runs), "--metrics",
                             str(metrics)], env=env, capture_output=True, text=True)
    seed_s = time.perf_counter() - start
    if seeded.returncode != 0:
        raise BenchError("xp-seed-history failed (exit code {}):\n{}".format(seeded.returncode,
                                                                              seeded.stderr.strip()))
    log("history: " + seeded.stdout.strip())
    middle = str(max(1, runs // 2))
    compared = [str(max(1, runs * k // 4)) for k in (1, 2, 3)]  # three runs spread over the history
    xp = str(XP)
    commands = [
        ("xp --version", [xp, "--version"]),
        ("xp history list", [xp, "history", "list"]),
        ("xp history list -o json", [xp, "history", "list", "-o", "json"]),
        ("xp history info " + middle, [xp, "history", "info", middle]),
        ("xp history last", [xp, "history", "last"]),
    ]
    for suffix in ([], ["-o", "json"]):
        commands.append((" ".join(["xp history compare"] + compared + suffix),
                         [xp, "history", "compare"] + compared + suffix))
    series = json.loads(output_of([xp, "history", "metrics", middle, "-o", "json"], project, env))
    name = series[0]["name"] if series else None  # the run's first metric series
    for suffix in ([], ["-o", "json"]):
        commands.append((" ".join(["xp history metrics", middle] + suffix),
                         [xp, "history", "metrics", middle] + suffix))
        if name is not None:
            commands.append((" ".join(["xp history metrics", middle, name] + suffix),
                             [xp, "history", "metrics", middle, name] + suffix))
    for _, cmd in commands:  # warm up, and check each works on the seeded history
        run(cmd, project, env)
    times = {label: [] for label, _ in commands}
    log("history: {} rounds of {} commands ...".format(reps, len(commands)))
    for rep in range(reps):
        ordered = commands if rep % 2 == 0 else list(reversed(commands))
        for label, cmd in ordered:
            times[label].append(run(cmd, project, env)[0] * 1000)
    # Peak memory: one more run of each under GNU time (kept out of the timings above).
    peaks = {label: run_peak(cmd, project, env, tmp)[1] for label, cmd in commands}
    # --query reads every run (and each run's last metric values): the one command whose cost
    # grows with the history. Slow, so fewer repetitions, each under GNU time (whose own cost
    # is lost in the noise here).
    label = 'xp history list --query "{}"'.format(QUERY)
    commands.append((label, [str(XP), "history", "list", "--query", QUERY]))
    times[label], query_peaks = [], []
    if query_reps > 0:
        log("history: {} run(s) of --query over every run ...".format(query_reps))
    for _ in range(query_reps):
        elapsed, peak = run_peak(commands[-1][1], project, env, tmp)
        times[label].append(elapsed * 1000)
        if peak is not None:
            query_peaks.append(peak)
    peaks[label] = max(query_peaks) if query_peaks else None
    size = (project / ".xp" / "history.db").stat().st_size
    return {"seed_s": seed_s, "seed_message": seeded.stdout.strip(), "db_bytes": size,
            "commands": [(label, times[label], peaks[label]) for label, _ in commands if times[label]]}


# --- report -------------------------------------------------------------------------------


def table(header, rows):
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    rule = "  ".join("-" * w for w in widths)

    def line(row):
        cells = []
        for i, cell in enumerate(row):
            cells.append(str(cell).ljust(widths[i]) if i == 0 else str(cell).rjust(widths[i]))
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), rule] + [line(row) for row in rows])


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0],
                                     epilog="Figures are explained in bench/README.md.")
    parser.add_argument("--submits", "-n", type=int, default=None,
                        help="bare/xp submit pairs for the overhead figure (default 40; --quick 8)")
    parser.add_argument("--reps", type=int, default=None,
                        help="repetitions of each history command (default 15; --quick 5)")
    parser.add_argument("--query-reps", type=int, default=None,
                        help="repetitions of `xp history list --query` over every run (default 3; --quick 1; 0 skips)")
    parser.add_argument("--history-runs", type=int, default=None, help="runs to seed (default 100000)")
    parser.add_argument("--history-metrics", type=int, default=None,
                        help="metric points to seed (default 1000000)")
    parser.add_argument("--follow-lines", type=int, default=None,
                        help="lines of the log-follow script, one every 100 ms (default 50; --quick 20)")
    docker = parser.add_mutually_exclusive_group()
    docker.add_argument("--docker", dest="docker", action="store_const", const=True, default=None,
                        help="run the docker section and fail when Docker or its image is missing "
                             "(default: run it when both are there, else skip it with a note)")
    docker.add_argument("--no-docker", dest="docker", action="store_const", const=False,
                        help="skip the docker section")
    parser.add_argument("--docker-submits", type=int, default=None,
                        help="rounds of `docker run` and xp submits on the docker targets (default 15; --quick 4)")
    parser.add_argument("--prepare-reps", type=int, default=None,
                        help="warm `xp experiment prepare` runs on the docker target (default 10; --quick 3)")
    remote = parser.add_mutually_exclusive_group()
    remote.add_argument("--remote", dest="remote", action="store_const", const=True, default=None,
                        help="run the remote (ssh) and cluster (Spark) sections and fail when their test services "
                             "are not up (default: run what is up, skip the rest with a note)")
    remote.add_argument("--no-remote", dest="remote", action="store_const", const=False,
                        help="skip the remote and cluster sections")
    parser.add_argument("--no-cluster", action="store_true",
                        help="skip the cluster section only (each of its jobs takes seconds)")
    parser.add_argument("--remote-rounds", type=int, default=None,
                        help="first submits (fresh cache) and one-file-edit resubmits of the 50 MB project on the "
                             "remote target, each against rsync (default 3; --quick 1)")
    parser.add_argument("--remote-resubmits", type=int, default=None,
                        help="pairs of unchanged resubmits and bare `ssh ... python3` (default 7; --quick 3)")
    parser.add_argument("--spark-submits", type=int, default=None,
                        help="rounds of PySpark submits on the cluster target and bare spark-submit, after one "
                             "warm-up (default 3; --quick 1; each takes about 15 s)")
    parser.add_argument("--quick", action="store_true",
                        help="fast smoke run: few iterations, 10000 runs and 100000 metric points")
    parser.add_argument("--python", default=None,
                        help="interpreter for both sides of the submit figure (default: python3 on PATH)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print it")
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures to FILE as JSON")
    args = parser.parse_args()

    submits = args.submits if args.submits is not None else (8 if args.quick else 40)
    reps = args.reps if args.reps is not None else (5 if args.quick else 15)
    history_runs = args.history_runs if args.history_runs is not None else (10_000 if args.quick else 100_000)
    history_metrics = (args.history_metrics if args.history_metrics is not None
                       else (100_000 if args.quick else 1_000_000))
    phase_runs = max(5, submits // 2)
    memory_repeats = 1 if args.quick else 3
    query_reps = args.query_reps if args.query_reps is not None else (1 if args.quick else 3)
    follow_lines = args.follow_lines if args.follow_lines is not None else (20 if args.quick else 50)
    docker_submits = args.docker_submits if args.docker_submits is not None else (4 if args.quick else 15)
    prepare_reps = args.prepare_reps if args.prepare_reps is not None else (3 if args.quick else 10)
    remote_rounds = args.remote_rounds if args.remote_rounds is not None else (1 if args.quick else 3)
    remote_resubmits = args.remote_resubmits if args.remote_resubmits is not None else (3 if args.quick else 7)
    spark_submits = args.spark_submits if args.spark_submits is not None else (1 if args.quick else 3)
    if (submits < 1 or reps < 1 or query_reps < 0 or history_runs < 1 or history_metrics < 0
            or follow_lines < 1 or docker_submits < 1 or prepare_reps < 1 or remote_rounds < 1
            or remote_resubmits < 1 or spark_submits < 1):
        parser.error("counts must be positive")

    check_build()
    warn_if_stale()
    if not Path("/proc/self/status").exists():
        log("bench: /proc is needed for the memory figure (Linux only)")
        return 2
    load_before = os.getloadavg()[0]
    if load_before > (os.cpu_count() or 1) / 2:
        log("bench: warning: load average {:.1f} on {} CPU(s); the figures may be noisy".format(
            load_before, os.cpu_count()))
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="xp-bench-"))
    keep = {"tmp": args.keep}

    def clean_up():  # also on errors, Ctrl-C and a closed pipe
        if keep["tmp"]:
            log("bench: temp folder kept: {}".format(tmp))
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    atexit.register(clean_up)
    try:
        python = resolve_python(args.python)
        env = isolated_env(tmp)
        xp_version = output_of([str(XP), "--version"], tmp, env).strip()
        python_version = output_of([python, "--version"], tmp, env).strip()
        log("bench: {} ({}), {} ({}); temp folder {}".format(xp_version, XP, python_version, python, tmp))
        project = make_submit_project(tmp, env, python)
        docker_skipped = None  # why the docker section is skipped, if it is
        if args.docker is False:
            docker_skipped = "--no-docker"
        else:
            docker_skipped = docker_target.unavailable(env)
            if docker_skipped and args.docker:
                raise BenchError("--docker: {}; `scripts/services.sh start docker` starts an engine and builds "
                                 "{}".format(docker_skipped, docker_target.IMAGE))
            if docker_skipped:
                log("bench: note: skipping the docker section: {} (`scripts/services.sh start docker` makes "
                    "both; --docker makes this an error)".format(docker_skipped))
        services = {}
        if args.remote is False:
            remote_skipped = cluster_skipped = "--no-remote"
        else:
            services, remote_skipped, cluster_skipped = remote_targets.unavailable()
            if args.remote and (remote_skipped or cluster_skipped):
                raise BenchError("--remote: {}; `scripts/services.sh start ssh spark` starts them".format(
                    remote_skipped or cluster_skipped))
            if remote_skipped:
                log("bench: note: skipping the remote section: {} (`scripts/services.sh start ssh` starts it; "
                    "--remote makes this an error)".format(remote_skipped))
            if args.no_cluster and not cluster_skipped:
                cluster_skipped = "--no-cluster"
            if cluster_skipped:
                log("bench: note: skipping the cluster section: {} (`scripts/services.sh start ssh spark` starts "
                    "them; --remote makes this an error)".format(cluster_skipped))

        log("submit: {} interleaved pairs of `python empty.py` and `xp experiment submit` ...".format(submits))
        submit = bench_submit(project, env, python, submits)
        log("plugin load: {} submits with XP_TIMINGS=1 ...".format(phase_runs))
        phases = bench_phases(project, env, phase_runs)
        log("memory: {} submit(s) of sleep.py (0.5 s) ...".format(memory_repeats))
        memory = bench_memory(project, env, memory_repeats)
        history = bench_history(tmp, env, history_runs, history_metrics, reps, query_reps)
        log("log-follow: {} lines, one every 100 ms, through `xp history logs -f` and a plain pipe ...".format(
            follow_lines))
        follow_result = follow.bench_follow(project, env, python, follow_lines, 0.1)
        docker_result = None
        if docker_skipped is None:
            docker_result = docker_target.bench_docker(tmp, env, docker_submits, prepare_reps)
        remote_result = {}
        if remote_skipped is None or cluster_skipped is None:
            remote_result = remote_targets.bench(tmp, env, services, remote_skipped is None, cluster_skipped is None,
                                                 remote_rounds, remote_resubmits, spark_submits)
    except BenchError as error:
        log("bench: error: {}".format(error))
        keep["tmp"] = True  # for inspection
        return 1
    except KeyboardInterrupt:
        return 130
    total_s = time.perf_counter() - started

    bare_med, xp_med = median(submit["bare_ms"]), median(submit["xp_ms"])
    added = xp_med - bare_med
    host_hwm = median([r["xp"]["VmHWM"] for r in memory])
    host_rss = median([r["xp"]["VmRSS"] for r in memory])
    child_hwm = median([r["python"]["VmHWM"] for r in memory])
    version_ms = median(next(times for label, times, _ in history["commands"] if label == "xp --version"))

    rows = [
        ["a. submit empty.py, median", ms(xp_med), ms(bare_med), plus(added),
         "{:.2f}x".format(xp_med / bare_med), "-"],
        ["a. submit empty.py, p90", ms(p90(submit["xp_ms"])), ms(p90(submit["bare_ms"])),
         plus(p90(submit["xp_ms"]) - p90(submit["bare_ms"])),
         "{:.2f}x".format(p90(submit["xp_ms"]) / p90(submit["bare_ms"])), "-"],
        ["b. plugin load (found -> loaded), median", ms(median(phases["plugin_load_ms"])), "-", "-",
         "{:.0%} of added".format(median(phases["plugin_load_ms"]) / added) if added > 0 else "-", "-"],
        ["c. host peak memory (VmHWM)", mb(host_hwm), mb(child_hwm) + " (python)", "-",
         "{:.2f}x".format(host_hwm / child_hwm), mb(host_hwm)],
        ["c. host memory while the script runs (VmRSS)", mb(host_rss), "-", "-", "-", "-"],
        ["d. seed {} runs + {} metrics".format(history_runs, history_metrics),
         "{:.2f} s".format(history["seed_s"]), "-", "-", "{:.1f} MB db".format(history["db_bytes"] / 1e6), "-"],
    ]
    for label, times, peak_kb in history["commands"]:
        peak = mb(peak_kb) if peak_kb is not None else "n/a"
        if label == "xp --version":
            rows.append(["d. " + label + " (baseline)", ms(median(times)), "-", "-", "-", peak])
            continue
        rows.append(["d. " + label, ms(median(times)), ms(version_ms) + " (--version)",
                     plus(median(times) - version_ms), "{:.2f}x".format(median(times) / version_ms), peak])

    xp_lat, pipe_lat = follow_result["xp_ms"], follow_result["pipe_ms"]
    for title, pick in (("median", median), ("p90", p90), ("max", max)):
        rows.append(["e. logs -f latency ({} lines), {}".format(follow_result["lines"], title), ms(pick(xp_lat)),
                     ms(pick(pipe_lat)) + " (pipe)", plus(pick(xp_lat) - pick(pipe_lat)), "-", "-"])
    if docker_result is not None:
        rows += docker_target.rows(docker_result)
    else:
        rows.append(["f. docker target: SKIPPED (skipped=1)", "-", "-", "-", "-", "-"])
    if remote_result.get("remote") is not None:
        rows += remote_targets.remote_rows(remote_result["remote"])
    else:
        rows.append(["g. remote target: SKIPPED (skipped=1)", "-", "-", "-", "-", "-"])
    if remote_result.get("cluster") is not None:
        rows += remote_targets.cluster_rows(remote_result["cluster"])
    else:
        rows.append(["h. cluster target: SKIPPED (skipped=1)", "-", "-", "-", "-", "-"])

    phase_rows = [[label, ms(median(values)), ms(p90(values))] for label, values in phases["phases"]]

    print()
    print("xp benchmarks  ({}; {}; {} CPU(s), load average {:.1f} -> {:.1f}; {:.0f} s total)".format(
        xp_version, python_version, os.cpu_count(), load_before, os.getloadavg()[0], total_s))
    print()
    print("Submit phases with XP_TIMINGS=1 (ms since the previous mark, {} submits; wall median {}):".format(
        phase_runs, ms(median(phases["wall_ms"]))))
    print(table(["phase (ends at mark)", "median", "p90"], phase_rows))
    print()
    print(table(["figure", "xp", "baseline", "added", "ratio", "xp peak RSS"], rows))
    print()
    verdict = "OK" if added < SUBMIT_TARGET_MS else "OVER TARGET"
    print("submit overhead: +{:.1f} ms over bare python (target < {:.0f} ms): {}".format(added, SUBMIT_TARGET_MS,
                                                                                       verdict))
    print("logs -f latency: median {:.1f} ms, p90 {:.1f} ms, max {:.1f} ms (plain pipe: median {:.2f} ms; the "
          "follower wakes on inotify, target median < 2 ms)".format(
              median(xp_lat), p90(xp_lat), max(xp_lat), median(pipe_lat)))
    if docker_result is not None:
        for line in docker_target.verdicts(docker_result):
            print(line)
        print("docker section: ran (skipped=0)")
    else:
        print("docker section: SKIPPED (skipped=1): {}".format(docker_skipped))
    for line in remote_targets.verdicts(remote_result):
        print(line)
    if remote_result.get("remote") is not None:
        print("remote section: ran (skipped=0)")
    else:
        print("remote section: SKIPPED (skipped=1): {}".format(remote_skipped))
    if remote_result.get("cluster") is not None:
        print("cluster section: ran (skipped=0)")
    else:
        print("cluster section: SKIPPED (skipped=1): {}".format(cluster_skipped))

    if args.json:
        Path(args.json).write_text(json.dumps({
            "xp": xp_version, "python": python, "submit": submit, "phases": phases, "memory_kb": memory,
            "history": history, "history_runs": history_runs, "history_metrics": history_metrics,
            "follow": follow_result, "docker": docker_result, "docker_skipped": docker_skipped,
            "remote": remote_result.get("remote"), "remote_skipped": remote_skipped,
            "cluster": remote_result.get("cluster"), "cluster_skipped": cluster_skipped,
            "rsync_note": remote_result.get("rsync_note"),
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
