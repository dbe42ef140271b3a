"""e. Log-follow latency: `xp history logs RUN -f` against a plain pipe, side by side.

A script prints `tick <i> <time.time_ns()>` every interval, flushing each line. One copy runs as
a detached xp run, read through `xp history logs RUN -f`; another copy runs directly with its
stdout piped to this script. Both streams are read at the same time (one selector, one thread);
each line's latency is the wall clock when this script read it minus the stamp in the line.
"""

import os
import re
import selectors
import subprocess
import time

from common import XP, BenchError, log, output_of

# Paced against its own start (no drift); the first line after `delay` seconds, so that the
# follower is surely running before the first line is written.
TICK_SCRIPT = """\
import sys
import time

count, interval, delay = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
time.sleep(delay)
start = time.time()
for i in range(count):
    wait = start + i * interval - time.time()
    if wait > 0:
        time.sleep(wait)
    print("tick {} {}".format(i, time.time_ns()), flush=True)
"""

TICK_LINE = re.compile(rb"^tick (\d+) (\d+)$")
START_DELAY_S = 0.5


class _Stream:
    def __init__(self, name, process):
        self.name = name
        self.process = process
        self.pending = b""
        self.latencies_ms = []
        self.early = 0  # lines stamped before the follower was started (not counted)
        self.seen = set()
        self.open = True


def _take_lines(stream, data, received_ns, not_before_ns):
    stream.pending += data
    *lines, stream.pending = stream.pending.split(b"\n")
    for line in lines:
        found = TICK_LINE.match(line.strip())
        if not found:
            continue
        stream.seen.add(int(found.group(1)))
        stamp = int(found.group(2))
        if stamp < not_before_ns:
            stream.early += 1
            continue
        stream.latencies_ms.append((received_ns - stamp) / 1e6)


def bench_follow(project, env, python, count, interval_s):
    script = project / "tick.py"
    script.write_text(TICK_SCRIPT)
    args = [str(count), str(interval_s), str(START_DELAY_S)]
    submit = [str(XP), "experiment", "submit", "-q", "--detach", "-c", "local", "tick.py"] + args
    run_id = output_of(submit, project, env).strip().splitlines()[-1].strip()
    if not run_id:
        raise BenchError("`{}` printed no run id".format(" ".join(submit)))
    follower_started_ns = time.time_ns()
    monotonic_started_ns = time.monotonic_ns()
    follower_err = project.parent / "follow.stderr"
    with open(follower_err, "wb") as err:
        follower = subprocess.Popen([str(XP), "history", "logs", run_id, "-f"], cwd=project, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
    pipe = subprocess.Popen([python, "tick.py"] + args, cwd=project, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE)
    streams = [_Stream("xp", follower), _Stream("pipe", pipe)]
    selector = selectors.DefaultSelector()
    for stream in streams:
        selector.register(stream.process.stdout, selectors.EVENT_READ, stream)
    deadline = time.monotonic() + START_DELAY_S + count * interval_s + 30
    try:
        while any(s.open for s in streams):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError("log-follow: no end after {:.0f} s (run {}); lines seen: xp {}, pipe {}".format(
                    START_DELAY_S + count * interval_s + 30, run_id, len(streams[0].seen), len(streams[1].seen)))
            for key, _ in selector.select(timeout=min(remaining, 1.0)):
                data = os.read(key.fileobj.fileno(), 65536)
                received_ns = time.time_ns()
                stream = key.data
                if not data:
                    stream.open = False
                    selector.unregister(key.fileobj)
                    continue
                _take_lines(stream, data, received_ns, follower_started_ns)
    finally:
        selector.close()
        for stream in streams:
            if stream.process.poll() is None:
                stream.process.kill()
            stream.process.wait()
            stream.process.stdout.close()
    status_line = follower_err.read_text(errors="replace").strip()
    for stream in streams:
        if stream.process.returncode != 0:
            raise BenchError("log-follow: the {} side exited with code {}: {}".format(
                stream.name, stream.process.returncode, status_line))
        if len(stream.seen) != count:
            raise BenchError("log-follow: the {} side delivered {} of {} lines (run {}; {})".format(
                stream.name, len(stream.seen), count, run_id, status_line))
    # The latencies compare wall clocks: a clock step (NTP, a paused VM) in between spoils them.
    step_ms = ((time.time_ns() - follower_started_ns) - (time.monotonic_ns() - monotonic_started_ns)) / 1e6
    if abs(step_ms) > 20:
        raise BenchError("log-follow: the wall clock moved {:+.0f} ms against the monotonic clock while the "
                         "lines were read; run the benchmark again".format(step_ms))
    if "Completed" not in status_line:
        raise BenchError("log-follow: run {} did not complete: {}".format(run_id, status_line))
    if streams[0].early:
        log("log-follow: {} line(s) were written before the follower started; left out".format(streams[0].early))
    return {"run_id": run_id, "lines": count, "interval_s": interval_s, "status": status_line,
            "xp_ms": streams[0].latencies_ms, "pipe_ms": streams[1].latencies_ms,
            "xp_early_lines": streams[0].early}
