"""Helpers shared by the benchmark sections (bench/run.py and the modules beside it)."""

import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# XP_BENCH_RELEASE points at another build's folder (e.g. a copy of an older release, for a
# before/after comparison); by default the workspace's own release build.
RELEASE = Path(os.environ.get("XP_BENCH_RELEASE") or REPO / "target" / "release")
XP = RELEASE / "xp"
SEEDER = RELEASE / "xp-seed-history"
LOCAL_PLUGIN = RELEASE / "local.plugin.toml"


class BenchError(Exception):
    pass


def log(message):
    print(message, file=sys.stderr, flush=True)


def median(values):
    return statistics.median(values) if values else float("nan")


def p90(values):
    """Nearest-rank 90th percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def run(cmd, cwd, env, what=None):
    """Runs `cmd` to completion; returns (wall seconds, stderr text). Raises on failure."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError("{} failed (exit code {}):\n{}".format(
            what or " ".join(map(str, cmd)), done.returncode, done.stderr.decode(errors="replace").strip()))
    return elapsed, done.stderr.decode(errors="replace")


GNU_TIME = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)


def run_peak(cmd, cwd, env, scratch):
    """Runs `cmd` under GNU time; returns (wall seconds, peak RSS in kB or None). Python's own
    wait4 cannot tell: a child's ru_maxrss starts at the RSS of the process that forked it
    (here this script), which hides anything smaller."""
    if GNU_TIME is None:
        return run(cmd, cwd, env)[0], None
    report = scratch / "time.out"
    elapsed, _ = run([GNU_TIME, "-f", "%M", "-o", str(report)] + cmd, cwd, env, what=" ".join(cmd))
    try:
        return elapsed, int(report.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return elapsed, None


def output_of(cmd, cwd, env):
    done = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError("{} failed (exit code {}):\n{}".format(" ".join(map(str, cmd)), done.returncode,
                                                              done.stderr.strip()))
    return done.stdout


def ms(value):
    return "{:.2f} s".format(value / 1000) if abs(value) >= 1000 else "{:.1f} ms".format(value)


def mb(kb):
    return "{:.1f} MB".format(kb / 1024)


def plus(value):
    """A time difference with its sign: +5.2 ms, -3.0 ms."""
    return ("-" if value < 0 else "+") + ms(abs(value))
