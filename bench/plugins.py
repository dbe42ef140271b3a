#!/usr/bin/env python3
"""Plugin load time and submit overhead of one xp build, or of two side by side.

    bench/plugins.py                              # target/release/xp
    bench/plugins.py --before OLD/target/release  # and another build, interleaved with it

For each build: `xp experiment submit -q -c local empty.py` against the bare `python3 empty.py`
it wraps (interleaved, order flipped every round, so drift favours neither), and the plugin
load time from XP_TIMINGS=1 (the time between the marks "plugin found" and "plugin loaded":
opening the library, abi_stable's checks, and `describe`). The builds' own plugins are used
(the folder of each xp). Standard library only; builds nothing.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BenchError, median, p90, run  # noqa: E402

import re  # noqa: E402

TIMING = re.compile(r"^xp-timing: (.+?) ([0-9.]+) ms$")


def project_for(build, tmp, python):
    """A fresh project made by this build's `xp init`, with its own XP_HOME."""
    root = tmp / build.name
    project = root / "proj"
    project.mkdir(parents=True)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("XDG_") and key not in ("XP_PLUGIN_PATH", "XP_TIMINGS")}
    env.update(HOME=str(root), XP_HOME=str(root / ".xp-home"))
    run([str(build.xp), "init"], project, env)
    compute = project / "aml_config" / "local.compute"
    text = compute.read_text()
    compute.write_text(re.sub(r'pythonLocation:.*', 'pythonLocation: "{}"'.format(python), text))
    (project / "empty.py").write_text("pass\n")
    return project, env


class Build:
    def __init__(self, name, folder):
        self.name = name
        self.xp = Path(folder) / "xp"
        if not self.xp.is_file():
            raise BenchError("{} is missing: build it with `cargo build --release -p xp -p xp-plugin-local`".format(
                self.xp))
        self.submit_ms, self.load_ms = [], []


def timed_submit(build, project, env):
    wall, stderr = run([str(build.xp), "experiment", "submit", "-q", "-c", "local", "empty.py"], project,
                       dict(env, XP_TIMINGS="1"))
    marks = {}
    for line in stderr.splitlines():
        found = TIMING.match(line.strip())
        if found:
            marks[found.group(1)] = float(found.group(2))
    if "plugin found" in marks and "plugin loaded" in marks:
        build.load_ms.append(marks["plugin loaded"] - marks["plugin found"])
    build.submit_ms.append(wall * 1000)


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--after", default=str(Path(__file__).resolve().parent.parent / "target" / "release"),
                        help="folder of the xp build to measure (default target/release)")
    parser.add_argument("--before", help="folder of another xp build to measure beside it")
    parser.add_argument("-n", "--rounds", type=int, default=40)
    args = parser.parse_args()
    python = os.path.realpath(sys.executable)
    builds = [Build("after", args.after)]
    if args.before:
        builds.insert(0, Build("before", args.before))
    with tempfile.TemporaryDirectory(prefix="xp-bench-plugins-") as tmp:
        tmp = Path(tmp)
        projects = {build.name: project_for(build, tmp, python) for build in builds}
        bare_ms = []
        first = next(iter(projects.values()))
        for _ in range(3):  # warm-up
            run([python, "empty.py"], first[0], first[1])
            for build in builds:
                timed_submit(build, *projects[build.name])
        for build in builds:
            build.submit_ms.clear()
            build.load_ms.clear()
        for round_ in range(args.rounds):
            order = builds if round_ % 2 == 0 else list(reversed(builds))
            wall, _ = run([python, "empty.py"], first[0], first[1])
            bare_ms.append(wall * 1000)
            for build in order:
                timed_submit(build, *projects[build.name])
    print("{:<34} {:>10} {:>10} {:>12} {:>8}".format("", "median ms", "p90 ms", "added ms", "ratio"))
    print("{:<34} {:>10.1f} {:>10.1f} {:>12} {:>8}".format("bare python3 empty.py", median(bare_ms), p90(bare_ms),
                                                          "", "1.00x"))
    for build in builds:
        added = median(build.submit_ms) - median(bare_ms)
        print("{:<34} {:>10.1f} {:>10.1f} {:>+12.1f} {:>7.2f}x".format(
            "xp submit ({})".format(build.name), median(build.submit_ms), p90(build.submit_ms), added,
            median(build.submit_ms) / median(bare_ms)))
    for build in builds:
        if build.load_ms:
            print("plugin load ({}): median {:.3f} ms, p90 {:.3f} ms".format(
                build.name, median(build.load_ms), p90(build.load_ms)))
        else:
            print("plugin load ({}): no XP_TIMINGS marks".format(build.name))


if __name__ == "__main__":
    try:
        main()
    except BenchError as error:
        print("error: {}".format(error), file=sys.stderr)
        sys.exit(1)
