"""f. The docker target: warm submit overhead against a bare `docker run`, and `xp experiment
prepare` cold (first build) and warm (nothing changed) against `xp --version`.

Needs a Docker engine and the local image xp-test/python:bookworm (`scripts/services.sh start
docker` makes both). `unavailable()` says why the section cannot run.
"""

import io
import shutil
import subprocess
import time
import uuid
import zipfile

from common import XP, BenchError, log, median, ms, output_of, plus, run

IMAGE = "xp-test/python:bookworm"
PREPARE_TARGET_MS = 100.0
SUBMIT_TARGET_RATIO = 1.10
WHEEL_PACKAGE = "xpbenchpkg"
WHEEL_VERSION = "0.1"


def unavailable(env):
    """None when the section can run; otherwise why not (one line)."""
    docker = shutil.which("docker", path=env.get("PATH"))
    if docker is None:
        return "no `docker` command on PATH"
    try:
        info = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], env=env, capture_output=True,
                              text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "the Docker engine does not answer (`docker info` timed out after 20 s)"
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["?"])[-1]
        return "no Docker engine answers (`docker info`: {})".format(reason)
    image = subprocess.run([docker, "image", "inspect", "--format", "{{.Id}}", IMAGE], env=env,
                           capture_output=True, text=True, timeout=60)
    if image.returncode != 0:
        return "the local image {} is missing".format(IMAGE)
    return None


def write_wheel(folder):
    """A minimal pure-Python wheel (a zip with the package, METADATA, WHEEL and RECORD). Its
    content is unique to this run, so its environment image is never already built or cached."""
    folder.mkdir(parents=True, exist_ok=True)
    name = "{}-{}-py3-none-any.whl".format(WHEEL_PACKAGE, WHEEL_VERSION)
    info = "{}-{}.dist-info".format(WHEEL_PACKAGE, WHEEL_VERSION)
    files = {
        "{}/__init__.py".format(WHEEL_PACKAGE): "TOKEN = {!r}\n".format(uuid.uuid4().hex),
        "{}/METADATA".format(info): "Metadata-Version: 2.1\nName: {}\nVersion: {}\n".format(
            WHEEL_PACKAGE, WHEEL_VERSION),
        "{}/WHEEL".format(info): "Wheel-Version: 1.0\nGenerator: xp-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join("{},,\n".format(path) for path in files) + "{}/RECORD,,\n".format(info)
    files["{}/RECORD".format(info)] = record
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)
    (folder / name).write_bytes(buffer.getvalue())
    return name


def _interleave(commands, project, env, rounds, warmups):
    """Runs each (label, cmd) `warmups` times, then `rounds` rounds of all of them, the order
    rotating every round so that none always runs first. Returns {label: [ms, ...]}."""
    for _ in range(warmups):
        for _, cmd in commands:
            run(cmd, project, env)
    times = {label: [] for label, _ in commands}
    for i in range(rounds):
        shift = i % len(commands)
        for label, cmd in commands[shift:] + commands[:shift]:
            times[label].append(run(cmd, project, env)[0] * 1000)
    return times


def bench_docker(tmp, env, submits, prepares):
    project = tmp / "docker-project"
    xp = str(XP)
    run([xp, "-q", "init", str(project)], tmp, env)
    run([xp, "computetarget", "attach", "docker", "--name", "d", "--base-image", IMAGE], project, env)
    run([xp, "computetarget", "attach", "docker", "--name", "dshared", "--base-image", IMAGE,
         "--set", "sharedVolumes=true"], project, env)
    (project / "empty.py").write_text("pass\n")

    # a. Warm submits: the default conda file has nothing to install, so the base image runs as it is.
    commands = [
        ("docker run", ["docker", "run", "--rm", "-v", "{}:/w".format(project), "-w", "/w", IMAGE, "python3",
                        "empty.py"]),
        ("xp submit -c d", [xp, "experiment", "submit", "-q", "-c", "d", "empty.py"]),
        ("xp submit -c dshared", [xp, "experiment", "submit", "-q", "-c", "dshared", "empty.py"]),
    ]
    log("docker: {} rounds of `docker run` and `xp experiment submit` on two docker targets ...".format(submits))
    submit_ms = _interleave(commands, project, env, submits, warmups=2)
    last = output_of([xp, "history", "list", "-n", "2", "-o", "json"], project, env)
    if last.count('"Completed"') < 2:
        raise BenchError("the last docker runs did not complete: " + last)

    # b. Prepare: a local wheel in the pip list makes an environment image to build.
    wheel = write_wheel(project / "wheels")
    conda = project / "aml_config" / "conda_dependencies.yml"
    text = conda.read_text()
    if "  - pip:\n" not in text:
        raise BenchError("unexpected default conda file (no `  - pip:` line):\n" + text)
    conda.write_text(text.replace("  - pip:\n", "  - pip:\n    - ./wheels/{}\n".format(wheel), 1))
    prepare = [xp, "experiment", "prepare", "-c", "d"]
    built = False
    try:
        log("docker: cold `xp experiment prepare -c d` (builds the environment image) ...")
        cold_s, cold_err = run(prepare, project, env)
        built = True
        if "cached" in cold_err.lower() or "Built environment image" not in cold_err:
            raise BenchError("the first prepare built nothing:\n" + cold_err.strip())
        log("docker: {} warm prepares against `xp --version` ...".format(prepares))
        warm_err = run(prepare, project, env)[1]
        if "nothing to build" not in warm_err:
            raise BenchError("the second prepare was not cached:\n" + warm_err.strip())
        prepare_ms = _interleave([("xp --version", [xp, "--version"]), ("xp experiment prepare -c d", prepare)],
                                 project, env, prepares, warmups=1)
        log("docker: xp experiment clean -c d ...")
        start = time.perf_counter()
        cleaned = subprocess.run([xp, "experiment", "clean", "-c", "d"], cwd=project, env=env,
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True)
        clean_s = time.perf_counter() - start
        if cleaned.returncode != 0:
            raise BenchError("xp experiment clean -c d failed:\n" + cleaned.stderr.strip())
        built = False
        removed = [line[len("removed "):] for line in cleaned.stdout.splitlines() if line.startswith("removed ")]
    finally:
        if built:  # an error after the build: leave no image behind
            subprocess.run([xp, "experiment", "clean", "-c", "d"], cwd=project, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True)
    return {
        "submit_ms": submit_ms,
        "cold_prepare_s": cold_s,
        "cold_prepare_message": cold_err.strip(),
        "prepare_ms": prepare_ms,
        "clean_s": clean_s,
        "removed": removed,
        "wheel": wheel,
    }


def rows(result):
    """Rows for the results table: figure, xp, baseline, added, ratio, xp peak RSS."""
    out = []
    times = result["submit_ms"]
    bare = median(times["docker run"])
    for label, title in (("xp submit -c d", "f. docker submit empty.py (snapshot copied in), median"),
                         ("xp submit -c dshared", "f. docker submit empty.py (sharedVolumes), median")):
        xp_med = median(times[label])
        out.append([title, ms(xp_med), ms(bare) + " (docker run)", plus(xp_med - bare),
                    "{:.2f}x".format(xp_med / bare), "-"])
    out.append(["f. docker prepare, cold (build with a local wheel)", "{:.2f} s".format(result["cold_prepare_s"]),
                "-", "-", "-", "-"])
    version = median(result["prepare_ms"]["xp --version"])
    warm = median(result["prepare_ms"]["xp experiment prepare -c d"])
    out.append(["f. docker prepare, warm (nothing changed), median", ms(warm), ms(version) + " (--version)",
                plus(warm - version), "{:.2f}x".format(warm / version), "-"])
    out.append(["f. docker clean -c d (removed {} image(s))".format(len(result["removed"])),
                ms(result["clean_s"] * 1000), "-", "-", "-", "-"])
    return out


def verdicts(result):
    times = result["submit_ms"]
    bare = median(times["docker run"])
    lines = []
    for label in ("xp submit -c d", "xp submit -c dshared"):
        ratio = median(times[label]) / bare
        lines.append("docker submit ({}): {:.2f}x bare docker run (target <= {:.2f}x): {}".format(
            label[len("xp submit "):], ratio, SUBMIT_TARGET_RATIO, "OK" if ratio <= SUBMIT_TARGET_RATIO else
            "OVER TARGET"))
    warm = median(result["prepare_ms"]["xp experiment prepare -c d"])
    lines.append("docker warm prepare: {:.1f} ms (target < {:.0f} ms): {}".format(
        warm, PREPARE_TARGET_MS, "OK" if warm < PREPARE_TARGET_MS else "OVER TARGET"))
    lines.append("docker clean: removed {}".format(", ".join(result["removed"]) or "nothing (UNEXPECTED)"))
    return lines
