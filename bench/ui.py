#!/usr/bin/env python3
"""Benchmark of the web view (`xp ui`) on a seeded history, side by side with the CLI.

Builds nothing: run `cargo build --release --workspace` first. See bench/README.md ("i. Web view").
"""

import argparse
import http.client
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

from common import SEEDER, XP, BenchError, log, median, ms, p90, run  # noqa: E402

TARGETS_MS = {"runs page": 50, "api runs": 50, "run page (": 100, "compare 20": 200}
POLYLINE = re.compile(r'<polyline class="series"[^>]* points="([^"]*)"')


def isolated_env(tmp):
    env = dict(os.environ)
    for name in ("XP_TIMINGS", "XP_PLUGIN_PATH", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        env.pop(name, None)
    (tmp / "home").mkdir(exist_ok=True)
    env["HOME"] = str(tmp / "home")
    env["XP_HOME"] = str(tmp / "xp-home")
    return env


def seed(project, env, runs, metrics):
    start = time.perf_counter()
    for args in (["--runs", str(runs), "--metrics", str(metrics)],
                 # One more run with 300,000 points over 2-3 series: each series >= 100,000.
                 ["--runs", "1", "--metrics", "300000"]):
        done = subprocess.run([str(SEEDER), "--project", str(project)] + args, env=env, capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise BenchError("xp-seed-history failed:\n" + done.stderr.strip())
    return time.perf_counter() - start


def proc_status(pid):
    fields = {}
    with open("/proc/{}/status".format(pid)) as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields


class Server:
    """`xp ui --port 0` in the project; requests over one kept-alive connection."""

    def __init__(self, project, env):
        self.process = subprocess.Popen([str(XP), "ui", "--port", "0"], cwd=project, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        url = self.process.stdout.readline().strip()
        found = re.match(r"http://([^:/]+):(\d+)/", url)
        if not found:
            self.process.kill()
            raise BenchError("xp ui printed {!r}, not its URL".format(url))
        self.host, self.port = found.group(1), int(found.group(2))
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def get(self, path):
        """(milliseconds, body bytes) of one GET."""
        start = time.perf_counter()
        self.connection.request("GET", path)
        reply = self.connection.getresponse()
        body = reply.read()
        elapsed = (time.perf_counter() - start) * 1000
        if reply.status != 200:
            raise BenchError("GET {} gave {}: {}".format(path, reply.status, body[:300]))
        return elapsed, body

    def stop(self):
        self.connection.close()
        self.process.kill()
        self.process.wait()


def points_per_chart(html):
    return [len(points.split()) for points in POLYLINE.findall(html)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs to seed (default 100000)")
    parser.add_argument("--metrics", type=int, default=1_000_000, help="metric points to seed (default 1000000)")
    parser.add_argument("--reps", type=int, default=20, help="requests of each page (default 20)")
    parser.add_argument("--cli-reps", type=int, default=10, help="runs of each CLI command (default 10)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    for path in (XP, SEEDER):
        if not path.exists():
            log("bench: missing {}; build first: cargo build --release --workspace".format(path))
            return 2

    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="xp-bench-ui-"))
    env = isolated_env(tmp)
    project = tmp / "history-project"
    server = None
    try:
        log("ui: seeding {} runs and {} metric points, and one run of 300000 points ...".format(
            args.runs, args.metrics))
        seed_s = seed(project, env, args.runs, args.metrics)
        server = Server(project, env)
        long_run = args.runs + 1
        info = json.loads(server.get("/api/runs/{}".format(long_run))[1])
        biggest = max(info["series"], key=lambda s: s["points"])
        step = max(1, args.runs // 20)  # 20 runs spread over the history
        twenty_list = [str(args.runs - i * step) for i in range(20) if args.runs - i * step > 0]
        twenty = ",".join(twenty_list)
        pages = [
            ("runs page", "/", "xp history list", ["history", "list"]),
            ("api runs", "/api/runs", "xp history list -o json", ["history", "list", "-o", "json"]),
            ("runs page, sorted by duration", "/?sort=duration", None, None),
            ("runs page, text filter", "/?q=0.003", None, None),
            ("runs page, page 1000", "/?page=1000", None, None),
            ("run page, again (series cached)", "/runs/{}".format(long_run),
             "xp history info {}".format(long_run), ["history", "info", str(long_run)]),
            ("api metrics, width 656", "/api/runs/{}/metrics?name={}&width=656".format(long_run, biggest["name"]),
             "xp history metrics {} {} -o json".format(long_run, biggest["name"]),
             ["history", "metrics", str(long_run), biggest["name"], "-o", "json"]),
            ("compare 20", "/compare?runs=" + twenty, "xp history compare (20 runs)",
             ["history", "compare"] + twenty_list),
            ("api compare 20", "/api/compare?runs=" + twenty, None, None),
        ]
        for _, path, _, _ in pages:  # warm up (page cache, prepared statements)
            server.get(path)
        chart_points = max(points_per_chart(server.get("/runs/{}".format(long_run))[1].decode()))
        log("ui: {} rounds of {} pages ...".format(args.reps, len(pages)))
        times = {label: [] for label, _, _, _ in pages}
        for rep in range(args.reps):
            for label, path, _, _ in (pages if rep % 2 == 0 else list(reversed(pages))):
                times[label].append(server.get(path)[0])
        memory = proc_status(server.process.pid)
        # The first view of a finished run's page reads every point: a new server each time, so
        # nothing of it is cached (the database file stays in the page cache, as in real use).
        server.stop()
        server = None
        first_view = []
        for _ in range(max(3, args.reps // 3)):
            fresh = Server(project, env)
            try:
                first_view.append(fresh.get("/runs/{}".format(long_run))[0])
            finally:
                fresh.stop()
        label = "run page ({} points x {} series), first view".format(biggest["points"], len(info["series"]))
        pages.insert(5, (label, None, "xp history info {}".format(long_run), ["history", "info", str(long_run)]))
        times[label] = first_view
        log("ui: the CLI side, {} runs of each command ...".format(args.cli_reps))
        cli = {}
        for label, _, cli_label, cli_args in pages:
            if cli_args is None:
                continue
            run([str(XP)] + cli_args, project, env)
            cli[label] = [run([str(XP)] + cli_args, project, env)[0] * 1000 for _ in range(args.cli_reps)]
        version = [run([str(XP), "--version"], project, env)[0] * 1000 for _ in range(args.cli_reps)]
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            log("ui: kept " + str(tmp))
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    header = ["figure", "xp ui median", "p90", "target", "CLI equivalent", "CLI median"]
    rows = []
    for label, _, cli_label, _ in pages:
        target = next((t for key, t in TARGETS_MS.items() if label.startswith(key)), None)
        verdict = "" if target is None else ("< {} ms {}".format(target, "OK" if median(times[label]) < target
                                                                  else "MISSED"))
        rows.append([label, ms(median(times[label])), ms(p90(times[label])), verdict, cli_label or "-",
                     ms(median(cli[label])) if label in cli else "-"])
    rows.append(["xp --version (process start, for scale)", "-", "-", "", "xp --version", ms(median(version))])
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    print("xp ui on {} runs + {} metric points, plus one run of 300,000 (seeded in {:.1f} s); "
          "load average {:.1f} before, {:.1f} after on {} CPUs".format(
              args.runs, args.metrics, seed_s, load_before, os.getloadavg()[0], os.cpu_count()))
    for row in [header, ["-" * w for w in widths]] + rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    print()
    print("points drawn per chart on the run page: {} (of a {}-point series; at most 4 per pixel column)".format(
        chart_points, biggest["points"]))
    print("server memory after {} requests: VmRSS {:.1f} MB, peak VmHWM {:.1f} MB (target < 50 MB: {})".format(
        args.reps * len(pages), memory["VmRSS"] / 1024, memory["VmHWM"] / 1024,
        "OK" if memory["VmHWM"] < 50 * 1024 else "MISSED"))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        log("bench: " + str(error))
        sys.exit(1)
