#!/usr/bin/env python3
"""i. Local submits of large projects: what a run's snapshot costs as the project grows.

For each project size (default: 10 MB in 100 files, 100 MB in 10,000 files, 1 GB in 50,000
files; `--sizes` to choose), a fresh project (`xp init`, `empty.py` = `pass`, the data as random
bytes under `data/`) is submitted to the local target:

- *first submit*: the project's first run (no store, no index yet);
- *unchanged resubmit*: `--resubmits` further submits, nothing changed;
- *one file edited*: `--resubmits` submits, each after one data file got new random content of
  the same size;

side by side with the same submit of a tiny project (`empty.py` and `aml_config/`, ~10 KB: the
"added" column is the difference) and with `cp -r` of the project's folder (the copy every run
made before snapshots were content-addressed). Each timed pair flips its order every round.
Needs only Python's standard library; builds nothing (`cargo build --release --workspace`).
Generated projects live in a temporary folder (on the file system of `--tmp`, default the
system's temporary folder), removed at the end; check `df -h` first for the 1 GB project, which
needs about three times its size while it runs.
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

sys.dont_write_bytecode = True

from common import XP, BenchError, log, median, ms, plus, run  # noqa: E402

SIZES = {"10MB": (10_000_000, 100), "100MB": (100_000_000, 10_000), "1GB": (1_000_000_000, 50_000),
         "520MB": (520_000_000, 5_000)}
DEFAULT_SIZES = ["10MB", "100MB", "1GB"]


def make_project(root, env, python, total_bytes=0, files=0):
    run([str(XP), "-q", "init", str(root)], root.parent, env)
    compute = root / "aml_config" / "local.compute"
    text, count = re.subn(r"(?m)^pythonLocation:.*$", "pythonLocation: {}".format(json.dumps(python)),
                          compute.read_text())
    compute.write_text(text if count else text + "\npythonLocation: {}\n".format(json.dumps(python)))
    (root / "empty.py").write_text("pass\n")
    paths = []
    if files:
        per_file = total_bytes // files
        for i in range(files):
            folder = root / "data" / "d{:03d}".format(i % 100)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "f{:05d}.bin".format(i)
            with open(path, "wb") as out:
                out.write(os.urandom(per_file))
            paths.append(path)
    return paths


def submit(project, env):
    return run([str(XP), "experiment", "submit", "-q", "-c", "local", "empty.py"], project, env)[0] * 1000


def copy(project, scratch, env):
    target = scratch / "cp-r"
    start = time.perf_counter()
    done = subprocess.run(["cp", "-r", str(project), str(target)], env=env)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise BenchError("cp -r {} failed".format(project))
    shutil.rmtree(target)
    return elapsed


def bench_size(tmp, env, python, label, resubmits):
    total, files = SIZES[label]
    project = tmp / "project-{}".format(label)
    tiny = tmp / "tiny-{}".format(label)
    log("snapshots: making the {} project ({} files) ...".format(label, files))
    paths = make_project(project, env, python, total, files)
    make_project(tiny, env, python)
    subprocess.run(["sync"])
    result = {"label": label, "bytes": total, "files": files, "first_ms": None, "tiny_first_ms": None,
              "unchanged_ms": [], "edit_ms": [], "tiny_ms": [], "cp_ms": []}
    result["tiny_first_ms"] = submit(tiny, env)
    result["first_ms"] = submit(project, env)
    log("snapshots: {}: first submit {}; {} unchanged resubmits and {} one-file edits ...".format(
        label, ms(result["first_ms"]), resubmits, resubmits))
    for i in range(resubmits):
        steps = [("unchanged", project), ("tiny", tiny), ("cp", None)]
        if i % 2:
            steps.reverse()
        for name, folder in steps:
            if name == "cp":
                result["cp_ms"].append(copy(project, tmp, env))
            elif name == "tiny":
                result["tiny_ms"].append(submit(tiny, env))
            else:
                result["unchanged_ms"].append(submit(project, env))
    per_file = total // files
    for i in range(resubmits):
        with open(paths[(7 + 13 * i) % len(paths)], "wb") as out:
            out.write(os.urandom(per_file))
        result["edit_ms"].append(submit(project, env))
    last = subprocess.run([str(XP), "history", "last", "-o", "json"], cwd=project, env=env,
                          capture_output=True, text=True)
    if '"Completed"' not in last.stdout:
        raise BenchError("the last run of the {} project did not complete: {}".format(label, last.stdout +
                                                                                         last.stderr))
    # Each file once, however many names it has (the store's trees are hard links).
    seen, total = set(), 0
    for folder, _, names in os.walk(project / ".xp"):
        for name in names:
            info = os.lstat(os.path.join(folder, name))
            if (info.st_dev, info.st_ino) not in seen and not os.path.islink(os.path.join(folder, name)):
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    result["xp_dir_bytes"] = total
    shutil.rmtree(project)
    shutil.rmtree(tiny)
    return result


def rows(results):
    out = []
    for r in results:
        tiny = median(r["tiny_ms"])
        name = "i. {} in {} files".format(r["label"], r["files"])
        out.append([name + ", first submit", ms(r["first_ms"]), ms(r["tiny_first_ms"]) + " (tiny, first)",
                    plus(r["first_ms"] - r["tiny_first_ms"]), "-"])
        for key, title in (("unchanged_ms", "unchanged resubmit"), ("edit_ms", "one file edited")):
            value = median(r[key])
            out.append([name + ", " + title, ms(value), ms(tiny) + " (tiny)", plus(value - tiny), "-"])
        out.append([name + ", cp -r of the project", ms(median(r["cp_ms"])), "-", "-",
                    "{:.0f} MB in .xp".format(r["xp_dir_bytes"] / 1e6)])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--sizes", default=",".join(DEFAULT_SIZES),
                        help="comma-separated, of " + ", ".join(SIZES) + " (default " + ",".join(DEFAULT_SIZES) + ")")
    parser.add_argument("--resubmits", type=int, default=3, help="unchanged and edited resubmits each (default 3)")
    parser.add_argument("--tmp", default=None, help="where to make the projects (default: the system's temp folder)")
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures to FILE")
    args = parser.parse_args()
    labels = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in labels if s not in SIZES]
    if unknown or args.resubmits < 1:
        parser.error("unknown size(s) {}; or --resubmits below 1".format(", ".join(unknown)))
    tmp = Path(tempfile.mkdtemp(prefix="xp-bench-snapshots-", dir=args.tmp))
    atexit.register(lambda: shutil.rmtree(tmp, ignore_errors=True))
    env = dict(os.environ)
    for name in ("XP_TIMINGS", "XP_PLUGIN_PATH", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        env.pop(name, None)
    (tmp / "home").mkdir()
    env["HOME"] = str(tmp / "home")
    env["XP_HOME"] = str(tmp / "xp-home")
    python = os.path.realpath(shutil.which("python3") or sys.executable)
    version = subprocess.run([str(XP), "--version"], capture_output=True, text=True).stdout.strip()
    results = []
    try:
        for label in labels:
            results.append(bench_size(tmp, env, python, label, args.resubmits))
    except BenchError as error:
        log("bench: error: {}".format(error))
        return 1
    header = ["figure", "xp", "baseline", "added", "note"]
    table = [header] + rows(results)
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    print()
    print("xp snapshots  ({}; {}; euid {})".format(version, XP, os.geteuid()))
    print()
    for index, row in enumerate(table):
        print("  ".join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i])
                        for i, c in enumerate(row)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
