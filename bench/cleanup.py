#!/usr/bin/env python3
"""What ending a run's processes costs, side by side with baselines measured in the same run.

  a. A script that leaves ESCAPEES processes behind (each double-forked into a session of its
     own): `python3 escape.py` (which leaves them; this script ends them afterwards, outside
     the timing) against `xp submit -q escape.py` (which ends them before it returns), and an
     empty script both ways: the added time of the end-of-run check when nothing is left.
  b. Cancel: `xp experiment cancel` of a detached run with ESCAPEES escaped processes, against
     killing the same tree by its known pids and waiting until they are gone (the lower bound).
  c. The mechanisms themselves, in Python on this machine: one scan of /proc/*/stat (finding
     descendants: what the subreaper needs), one scan of /proc/*/environ (finding XP_RUN_ID),
     and one cgroup v2 cycle (make a group, move a process in, cgroup.kill, wait, remove) where
     this machine lets this user do that.

Needs `cargo build --release --workspace` first; Linux; Python 3 (standard library only).
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import XP, BenchError, log, median, ms, p90, plus  # noqa: E402

ESCAPE = """\
import os, sys, time
folder, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork() == 0:
            # A daemon's manners: no terminal, no pipes of the parent's kept open.
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            open(os.path.join(folder, str(os.getpid())), "w").close()
            time.sleep(600)
            os._exit(0)
        os._exit(0)
    os.waitpid(child, 0)
while len(os.listdir(folder)) < count:
    time.sleep(0.001)
print("escaped", flush=True)
if "--stay" in sys.argv:
    time.sleep(600)
"""


def alive(pid):
    try:
        with open("/proc/{}/stat".format(pid)) as stat:
            text = stat.read()
        return not text[text.rfind(")") + 2:].startswith("Z")
    except OSError:
        return False


def escapees(folder):
    return [int(name) for name in os.listdir(folder)]


def end(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.time() + 5
    while any(alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.001)


def fresh(folder):
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder


def timed(cmd, cwd, env):
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise BenchError("{} failed: {}".format(" ".join(cmd), done.stderr.decode(errors="replace")))
    return elapsed


def section_a(project, env, python, rounds, count):
    pids_dir = project / "pids"
    bare, xp, bare_empty, xp_empty = [], [], [], []
    for round_number in range(rounds):
        order = [0, 1] if round_number % 2 == 0 else [1, 0]
        for side in order:
            folder = fresh(pids_dir)
            if side == 0:
                bare.append(timed([python, "escape.py", str(folder), str(count)], project, env))
                left = escapees(folder)
                end(left)
            else:
                xp.append(timed([str(XP), "-q", "submit", "escape.py", str(folder), str(count)], project, env))
                left = [pid for pid in escapees(folder) if alive(pid)]
                if left:
                    end(left)
                    raise BenchError("xp left {} of {} escaped processes".format(len(left), count))
        for side in order:
            if side == 0:
                bare_empty.append(timed([python, "empty.py"], project, env))
            else:
                xp_empty.append(timed([str(XP), "-q", "submit", "empty.py"], project, env))
    return bare, xp, bare_empty, xp_empty


def section_b(project, env, python, rounds, count):
    pids_dir = project / "pids"
    xp_cancel, bare_kill = [], []
    for _ in range(rounds):
        folder = fresh(pids_dir)
        run_id = subprocess.run([str(XP), "-q", "submit", "-a", "escape.py", str(folder), str(count), "--stay"],
                                cwd=project, env=env, capture_output=True, text=True, check=True).stdout.strip()
        deadline = time.time() + 30
        while len(escapees(folder)) < count and time.time() < deadline:
            time.sleep(0.01)
        xp_cancel.append(timed([str(XP), "-q", "experiment", "cancel", run_id], project, env))
        left = [pid for pid in escapees(folder) if alive(pid)]
        if left:
            end(left)
            raise BenchError("cancel left {} of {} escaped processes".format(len(left), count))

        folder = fresh(pids_dir)
        tree = subprocess.Popen([python, "escape.py", str(folder), str(count), "--stay"], cwd=project, env=env,
                                stdout=subprocess.PIPE, start_new_session=True)
        tree.stdout.readline()
        known = escapees(folder)
        start = time.perf_counter()
        os.killpg(tree.pid, signal.SIGKILL)
        end(known)
        tree.wait()
        bare_kill.append((time.perf_counter() - start) * 1000)
    return xp_cancel, bare_kill


def scan(kind, reps):
    times = []
    count = 0
    for _ in range(reps):
        start = time.perf_counter()
        count = 0
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/{}/{}".format(name, kind), "rb") as handle:
                    data = handle.read()
                count += 1
                if kind == "environ":
                    b"XP_RUN_ID=bench" in data.split(b"\0")
            except OSError:
                pass
        times.append((time.perf_counter() - start) * 1000)
    return times, count


def cgroup_root():
    """A cgroup v2 folder this user may make groups in, or the reason there is none."""
    own = None
    with open("/proc/self/cgroup") as lines:
        for line in lines:
            if line.startswith("0::"):
                own = line[3:].strip()
    mounts = []
    with open("/proc/self/mountinfo") as lines:
        for line in lines:
            fields = line.split()
            if " - cgroup2 " in line:
                mounts.append(fields[4])
    if own is None or not mounts:
        return None, "no cgroup v2 hierarchy"
    root = Path(mounts[0]) / own.lstrip("/")
    if not os.access(root, os.W_OK):
        return None, "{} is not writable by this user (no delegation)".format(root)
    if not (root / "cgroup.procs").exists():
        return None, "{} has no cgroup.procs".format(root)
    return root, None


def cgroup_cycle(root, reps):
    times = []
    has_kill = None
    for index in range(reps):
        group = root / "xp-bench-{}-{}".format(os.getpid(), index)
        child = subprocess.Popen(["sleep", "600"])
        start = time.perf_counter()
        group.mkdir()
        (group / "cgroup.procs").write_text(str(child.pid))
        kill = group / "cgroup.kill"
        has_kill = kill.exists()
        if has_kill:
            kill.write_text("1")
        else:
            os.kill(child.pid, signal.SIGKILL)
        child.wait()
        group.rmdir()
        times.append((time.perf_counter() - start) * 1000)
    return times, has_kill


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--escapees", type=int, default=10)
    parser.add_argument("--scans", type=int, default=50)
    parser.add_argument("--python", default=shutil.which("python3"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.scans = 3, 10
    if not XP.exists():
        raise SystemExit("{} is missing: cargo build --release --workspace".format(XP))
    python = os.path.realpath(args.python)
    with tempfile.TemporaryDirectory(prefix="xp-bench-cleanup-") as scratch:
        scratch = Path(scratch)
        env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_") and k != "XP_PLUGIN_PATH"}
        env.update(HOME=str(scratch / "home"), XP_HOME=str(scratch / "home" / ".xp"))
        project = scratch / "project"
        project.mkdir(parents=True)
        subprocess.run([str(XP), "-q", "init"], cwd=project, env=env, check=True)
        config = project / "aml_config" / "local.compute"
        config.write_text(config.read_text().replace('pythonLocation: "python3"', 'pythonLocation: "{}"'.format(python)))
        (project / "escape.py").write_text(ESCAPE)
        (project / "empty.py").write_text("pass\n")
        for warm in range(2):
            timed([str(XP), "-q", "submit", "empty.py"], project, env)
        log("a. runs that leave {} escaped processes ({} rounds)".format(args.escapees, args.rounds))
        bare, xp, bare_empty, xp_empty = section_a(project, env, python, args.rounds, args.escapees)
        log("b. cancels ({} rounds)".format(args.rounds))
        xp_cancel, bare_kill = section_b(project, env, python, args.rounds, args.escapees)
    log("c. mechanisms")
    stat_times, processes = scan("stat", args.scans)
    environ_times, _ = scan("environ", args.scans)
    root, why = cgroup_root()
    cgroup_times, has_kill = cgroup_cycle(root, args.scans) if root else ([], None)

    rows = [
        ("a. leaves {} escapees".format(args.escapees), "python3 (leaves them)", bare, "xp submit (ends them)", xp),
        ("a. empty script", "python3", bare_empty, "xp submit", xp_empty),
        ("b. cancel, {} escapees".format(args.escapees), "kill by known pids", bare_kill, "xp experiment cancel",
         xp_cancel),
    ]
    print("{:<26} {:>24} {:>12} {:>24} {:>12} {:>10}".format("figure", "baseline", "median/p90", "xp", "median/p90",
                                                            "added"))
    for name, base_name, base, xp_name, xp_values in rows:
        print("{:<26} {:>24} {:>12} {:>24} {:>12} {:>10}".format(
            name, base_name, "{}/{}".format(ms(median(base)), ms(p90(base))), xp_name,
            "{}/{}".format(ms(median(xp_values)), ms(p90(xp_values))), plus(median(xp_values) - median(base))))
    print("c. one /proc/*/stat scan ({} processes): {} median; one /proc/*/environ scan: {} median".format(
        processes, ms(median(stat_times)), ms(median(environ_times))))
    if root:
        print("c. one cgroup v2 cycle (mkdir, move, {}, rmdir) in {}: {} median".format(
            "cgroup.kill" if has_kill else "kill", root, ms(median(cgroup_times))))
    else:
        print("c. cgroup v2 cycle: n/a ({})".format(why))


if __name__ == "__main__":
    try:
        main()
    except BenchError as error:
        raise SystemExit("bench failed: {}".format(error))
