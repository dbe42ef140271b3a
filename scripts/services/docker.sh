# shellcheck shell=bash
# Docker component: a reachable Docker daemon plus the locally built base images
#   xp-test/python:bookworm   debootstrap'ed Debian bookworm (minbase) + python3, pip, venv, CAs
#   xp-test/pyspark:bookworm  the above + openjdk-17-jre-headless + pyspark (pip, from local wheels)
# and a folder of wheels for the Workbench test project (pandas, scikit-learn, joblib and their
# dependencies, for the python image's Python), which the tests give xp as a target's
# `wheelhouse`, so that building that project's environment needs no index.
# No registry is ever contacted: the first image is imported from a tarball, the second is built
# FROM the first (a local tag).

XP_DOCKER_DIR=$XP_SERVICES_DIR/docker
XP_DOCKERD_PID=$XP_DOCKER_DIR/dockerd.pid
XP_DOCKERD_LOG=$XP_DOCKER_DIR/dockerd.log
XP_IMAGE_PYTHON=${XP_TEST_DOCKER_PYTHON_IMAGE:-xp-test/python:bookworm}
XP_IMAGE_PYSPARK=${XP_TEST_DOCKER_PYSPARK_IMAGE:-xp-test/pyspark:bookworm}
XP_DEBIAN_MIRROR=${XP_SERVICES_DEBIAN_MIRROR:-http://deb.debian.org/debian}
XP_DEBIAN_SECURITY_MIRROR=${XP_SERVICES_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
XP_HOST_CA_BUNDLE=${XP_SERVICES_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
# Verified image ids are remembered here so warm starts skip the slow functional checks.
XP_IMAGE_CHECKED_DIR=$XP_SERVICES_CACHE/images-checked

docker_answers() { timeout 20 docker info >/dev/null 2>&1; }

docker_socket_path() {
  case ${DOCKER_HOST:-unix:///var/run/docker.sock} in
    unix://*) echo "${DOCKER_HOST#unix://}" ;;
    *) echo "" ;;
  esac
}

docker_start_daemon() {
  mkdir -p "$XP_DOCKER_DIR"
  local pid
  if command -v docker >/dev/null 2>&1 && docker_answers; then
    if pid=$(pid_from_file "$XP_DOCKERD_PID" dockerd); then
      log "docker: daemon started earlier by this script (pid $pid) answers; reusing it"
    else
      log "docker: daemon answers (server $(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?')); reusing it (not ours, never stopped by this script)"
    fi
    return 0
  fi

  local sock
  sock=$(docker_socket_path)
  [ -n "$sock" ] || die "docker: DOCKER_HOST=$DOCKER_HOST does not answer and is not a local unix socket; cannot start a daemon for it"

  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    log "docker: docker/dockerd missing; installing Debian's docker.io"
    apt_ensure docker.io
  fi

  if pid=$(pid_from_file "$XP_DOCKERD_PID" dockerd); then
    log "docker: our dockerd (pid $pid) is running but not answering yet; waiting"
    wait_until 120 "dockerd to answer" docker_answers || die "docker: our dockerd (pid $pid) does not answer; see $XP_DOCKERD_LOG"
    return 0
  fi

  if [ -S "$sock" ] && pgrep -x dockerd >/dev/null 2>&1; then
    log "docker: a dockerd we did not start is running (pid $(pgrep -x dockerd | head -n1)) but does not answer yet; waiting up to 60s"
    wait_until 60 "the existing dockerd to answer" docker_answers \
      || die "docker: the running dockerd (not started by this script) does not answer on $sock; fix or stop it first"
    log "docker: existing daemon answers now; reusing it"
    return 0
  fi

  is_root || die "docker: no daemon answers on $sock and starting dockerd needs root"
  if [ -e "$sock" ]; then
    log "docker: removing stale socket $sock (no dockerd process behind it)"
    rm -f "$sock"
  fi

  # Extra dockerd flags (e.g. "--storage-driver=vfs" on hosts where overlayfs is unavailable).
  local attempt extra=()
  read -r -a extra <<<"${XP_SERVICES_DOCKERD_ARGS:-}"
  for attempt in 1 2; do
    log "docker: starting dockerd ${extra[*]} (log: $XP_DOCKERD_LOG)"
    # 9>&-: daemons must not inherit the lock fd (they would hold the lock forever).
    setsid nohup dockerd "${extra[@]}" >>"$XP_DOCKERD_LOG" 2>&1 </dev/null 9>&- &
    echo $! >"$XP_DOCKERD_PID"
    local t0=$SECONDS ok=0
    while [ $((SECONDS - t0)) -lt 90 ]; do
      if docker_answers; then ok=1; break; fi
      pid_from_file "$XP_DOCKERD_PID" dockerd >/dev/null || break
      sleep 0.5
    done
    if [ "$ok" = 1 ]; then
      log "docker: dockerd (pid $(cat "$XP_DOCKERD_PID")) answers after $(since "$t0")"
      return 0
    fi
    if pid=$(pid_from_file "$XP_DOCKERD_PID" dockerd); then
      kill -TERM "$pid" 2>/dev/null || true
      sleep 2
    fi
    rm -f "$XP_DOCKERD_PID"
    log "docker: dockerd failed to come up; last log lines:"
    tail -n 25 "$XP_DOCKERD_LOG" | sed 's/^/    | /' >&2
    # Nested/virtualised hosts often lack iptables support; the daemon works without it
    # (containers keep loopback and --network host, which is all the tests use).
    if [ "$attempt" = 1 ] && grep -qiE 'iptables|nat' "$XP_DOCKERD_LOG"; then
      log "docker: retrying with --iptables=false"
      extra+=(--iptables=false)
      continue
    fi
    break
  done
  die "docker: could not start dockerd; see $XP_DOCKERD_LOG"
}

docker_stop() {
  stop_pid_file "$XP_DOCKERD_PID" dockerd "docker: dockerd"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null | sed 's/^sha256://'; }

# Users who reach Docker through ssh need to be in the group owning the socket.
docker_socket_group() {
  local sock
  sock=$(docker_socket_path)
  [ -n "$sock" ] && [ -S "$sock" ] && stat -c %G "$sock"
}

# ---- xp-test/python:bookworm ----

# Add the CAs the host trusts but a stock Debian image does not (e.g. a TLS-inspecting proxy's
# CA) to the image: as /usr/local/share/ca-certificates entries, so that update-ca-certificates
# runs inside the image (ca-certificates-java, later apt upgrades) keep them.
install_host_cas_into_rootfs() {
  local root=$1 py
  py=$(host_python)
  [ -r "$XP_HOST_CA_BUNDLE" ] || die "docker: host CA bundle $XP_HOST_CA_BUNDLE not readable"
  "$py" - "$XP_HOST_CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt" "$root/usr/local/share/ca-certificates" <<'EOF'
import os, re, sys
pem = re.compile(r"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", re.S)
def certs(path):
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return pem.findall(f.read())
    except FileNotFoundError:
        return []
norm = lambda c: "".join(c.split())
have = {norm(c) for c in certs(sys.argv[2])}
os.makedirs(sys.argv[3], exist_ok=True)
n = 0
for c in certs(sys.argv[1]):
    if norm(c) not in have:
        n += 1
        with open(os.path.join(sys.argv[3], "xp-host-%03d.crt" % n), "w") as f:
            f.write(c + "\n")
print(n)
EOF
}

build_python_image() {
  local t0=$SECONDS
  is_root || die "docker: building $XP_IMAGE_PYTHON needs root (debootstrap)"
  apt_ensure debootstrap debian-archive-keyring
  local work root
  make_tmp_dir "$XP_SERVICES_DIR"
  work=$XP_TMP
  root=$work/rootfs
  mkdir -p "$root"
  log "docker: debootstrap --variant=minbase bookworm from $XP_DEBIAN_MIRROR (a few minutes; log: $XP_LOG_DIR/debootstrap.log)"
  run_logged debootstrap.log debootstrap --variant=minbase --components=main \
    --include=python3,python3-pip,python3-venv,ca-certificates \
    bookworm "$root" "$XP_DEBIAN_MIRROR" || die "docker: debootstrap failed (see $XP_LOG_DIR/debootstrap.log)"
  log "docker: debootstrap done in $(since "$t0")"

  # apt sources for later `apt-get install` inside images built FROM this one.
  rm -f "$root/etc/apt/sources.list"
  mkdir -p "$root/etc/apt/sources.list.d"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $XP_DEBIAN_MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $XP_DEBIAN_SECURITY_MIRROR
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  local extra
  extra=$(install_host_cas_into_rootfs "$root")
  run_logged debootstrap.log chroot "$root" /usr/sbin/update-ca-certificates --fresh \
    || die "docker: update-ca-certificates in the image root failed"
  # And the host bundle itself, verbatim, as the brief asks (a superset of the regenerated one).
  cp "$XP_HOST_CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
  chmod 0644 "$root/etc/ssl/certs/ca-certificates.crt"
  log "docker: host CA bundle copied into the image ($extra certificate(s) beyond Debian's set)"
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
  # Slim the image; keep /usr/share/man/man1 (openjdk's postinst needs it).
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/etc/resolv.conf "$root"/etc/hostname
  mkdir -p "$root/usr/share/man/man1"
  local m
  while read -r m; do [ -n "$m" ] && umount -l "$m"; done < <(findmnt -rn -o TARGET | grep -F "$root/" | sort -r)

  log "docker: importing rootfs as $XP_IMAGE_PYTHON"
  tar --numeric-owner -C "$root" -cf - . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message "xp-services: debootstrap minbase bookworm + python3" \
    - "$XP_IMAGE_PYTHON" >>"$XP_LOG_DIR/docker-build.log" 2>&1 \
    || die "docker: docker import of $XP_IMAGE_PYTHON failed (see $XP_LOG_DIR/docker-build.log)"
  rm -rf --one-file-system "$work"
  log "docker: built $XP_IMAGE_PYTHON in $(since "$t0")"
}

check_python_image() {
  local out
  out=$(docker run --rm --network none "$XP_IMAGE_PYTHON" python3 -c \
    'import ssl, venv, ensurepip, sys; import pip; print("python", sys.version.split()[0], "pip", pip.__version__)' 2>&1) \
    || die "docker: $XP_IMAGE_PYTHON does not work: $out"
  log "docker: $XP_IMAGE_PYTHON ok ($out)"
}

# ---- xp-test/pyspark:bookworm ----

build_pyspark_image() {
  local t0=$SECONDS wheels ctx
  ensure_pyspark_wheels
  wheels=$(pyspark_wheels_dir)
  make_tmp_dir "$XP_SERVICES_DIR"
  ctx=$XP_TMP
  mkdir -p "$ctx/wheels"
  cp -l "$wheels"/*.whl "$ctx/wheels/" 2>/dev/null || cp "$wheels"/*.whl "$ctx/wheels/"
  cat >"$ctx/Dockerfile" <<EOF
FROM $XP_IMAGE_PYTHON
ENV DEBIAN_FRONTEND=noninteractive
RUN mkdir -p /usr/share/man/man1 \\
 && apt-get update \\
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY wheels /tmp/xp-wheels
RUN python3 -m pip install --no-cache-dir --break-system-packages --no-index --find-links /tmp/xp-wheels pyspark==$XP_PYSPARK_VERSION \\
 && rm -rf /tmp/xp-wheels
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \\
    SPARK_HOME=/usr/local/lib/python3.11/dist-packages/pyspark \\
    PYSPARK_PYTHON=python3
EOF
  log "docker: building $XP_IMAGE_PYSPARK (JRE from Debian, pyspark $XP_PYSPARK_VERSION from local wheels; log: $XP_LOG_DIR/docker-build.log)"
  # --network host: apt inside the build reaches the Debian mirror exactly as the host does.
  # The legacy builder resolves FROM against local images only when nothing forces a pull.
  DOCKER_BUILDKIT=0 run_logged docker-build.log docker build --network host -t "$XP_IMAGE_PYSPARK" "$ctx" \
    || die "docker: docker build of $XP_IMAGE_PYSPARK failed (see $XP_LOG_DIR/docker-build.log)"
  rm -rf "$ctx"
  log "docker: built $XP_IMAGE_PYSPARK in $(since "$t0")"
}

check_pyspark_image() {
  local id out
  id=$(image_id "$XP_IMAGE_PYSPARK")
  if [ -e "$XP_IMAGE_CHECKED_DIR/$id" ]; then
    out=$(docker run --rm --network none "$XP_IMAGE_PYSPARK" python3 -c 'import pyspark; print(pyspark.__version__)' 2>&1) \
      || die "docker: $XP_IMAGE_PYSPARK does not work: $out"
    log "docker: $XP_IMAGE_PYSPARK ok (pyspark $out; local[1] job verified earlier for this image id)"
    return 0
  fi
  log "docker: checking $XP_IMAGE_PYSPARK with spark-submit --version and a local[1] job"
  out=$(docker run --rm --network none -e SPARK_LOCAL_IP=127.0.0.1 "$XP_IMAGE_PYSPARK" bash -c '
set -e
spark-submit --version 2>&1 | grep -m1 -o "version [0-9.]*"
cat > /tmp/job.py <<EOF
from pyspark.sql import SparkSession
s = SparkSession.builder.master("local[1]").appName("xp-check").getOrCreate()
n = s.sparkContext.parallelize(range(100), 2).map(lambda x: x * 2).sum()
print("XP_CHECK_SUM", n)
s.stop()
EOF
spark-submit /tmp/job.py 2>/dev/null | grep XP_CHECK_SUM
' 2>&1) || die "docker: $XP_IMAGE_PYSPARK check failed: $out"
  echo "$out" | grep -q "XP_CHECK_SUM 9900" || die "docker: $XP_IMAGE_PYSPARK local job gave unexpected output: $out"
  mkdir -p "$XP_IMAGE_CHECKED_DIR"
  : >"$XP_IMAGE_CHECKED_DIR/$id"
  log "docker: $XP_IMAGE_PYSPARK ok ($(echo "$out" | tr '\n' ' '))"
}

# ---- wheels of the Workbench test project ----

# Pinned, dependencies included, so every machine tests the same packages.
XP_WORKBENCH_REQUIREMENTS=(pandas==2.2.3 scikit-learn==1.5.2 joblib==1.4.2 numpy==2.1.3 scipy==1.14.1
  threadpoolctl==3.5.0 python-dateutil==2.9.0.post0 pytz==2024.2 tzdata==2024.2 six==1.16.0)

workbench_wheels_dir() {
  echo "$XP_SERVICES_CACHE/wheels/workbench-$(echo "${XP_WORKBENCH_REQUIREMENTS[*]}" | sha256sum | cut -c1-12)"
}

# Download (once per machine) the wheels into $(workbench_wheels_dir), from inside the python
# image: its Python and platform pick the files, and its CA bundle (the host's) reaches PyPI.
# Then check, offline, that they install the project's packages in that image.
ensure_workbench_wheels() {
  local dir t0=$SECONDS tmp
  dir=$(workbench_wheels_dir)
  [ -e "$dir/.complete" ] && return 0
  mkdir -p "$XP_SERVICES_CACHE/wheels"
  make_tmp_dir "$XP_SERVICES_CACHE/wheels"
  tmp=$XP_TMP
  chmod 0755 "$tmp"
  log "docker: downloading the Workbench test project's wheels from PyPI (once per machine; log: $XP_LOG_DIR/pip.log)"
  # --network host: pip reaches PyPI exactly as the host does (also where bridged containers
  # have no way out, e.g. a daemon started with --iptables=false).
  run_logged pip.log docker run --rm --network host --user "$(id -u):$(id -g)" -e HOME=/tmp \
    -v "$tmp:/wheels" "$XP_IMAGE_PYTHON" \
    python3 -m pip download --no-cache-dir --progress-bar off --only-binary=:all: -d /wheels \
    "${XP_WORKBENCH_REQUIREMENTS[@]}" \
    || die "docker: downloading the Workbench test project's wheels failed (see $XP_LOG_DIR/pip.log)"
  run_logged pip.log docker run --rm --network none --user "$(id -u):$(id -g)" -e HOME=/tmp \
    -v "$tmp:/wheels:ro" "$XP_IMAGE_PYTHON" \
    python3 -m pip install --dry-run --no-cache-dir --break-system-packages --no-index --find-links /wheels \
    pandas scikit-learn joblib \
    || die "docker: the downloaded wheels do not install offline in $XP_IMAGE_PYTHON (see $XP_LOG_DIR/pip.log)"
  chmod -R a+rX "$tmp"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  : >"$dir/.complete"
  log "docker: Workbench test project's wheels ready in $dir ($(du -sh "$dir" | cut -f1), $(since "$t0"))"
}

docker_start() {
  local t0=$SECONDS
  docker_start_daemon
  if image_exists "$XP_IMAGE_PYTHON"; then
    log "docker: image $XP_IMAGE_PYTHON present (cached)"
  else
    build_python_image
  fi
  check_python_image
  if image_exists "$XP_IMAGE_PYSPARK"; then
    log "docker: image $XP_IMAGE_PYSPARK present (cached)"
  else
    build_pyspark_image
  fi
  check_pyspark_image
  ensure_workbench_wheels
  log "docker: ready in $(since "$t0")"
}

docker_status() {
  local ok=0 who="external"
  pid_from_file "$XP_DOCKERD_PID" dockerd >/dev/null && who="started by services.sh"
  if command -v docker >/dev/null 2>&1 && docker_answers; then
    echo "docker: daemon UP ($who, server $(docker version -f '{{.Server.Version}}' 2>/dev/null))"
  else
    echo "docker: daemon DOWN"
    return 1
  fi
  local img
  for img in "$XP_IMAGE_PYTHON" "$XP_IMAGE_PYSPARK"; do
    if image_exists "$img"; then
      echo "docker: image $img present ($(docker image inspect -f '{{.Size}}' "$img" | awk '{printf "%.0f MB", $1/1e6}'))"
    else
      echo "docker: image $img MISSING"
      ok=1
    fi
  done
  if [ -e "$(workbench_wheels_dir)/.complete" ]; then
    echo "docker: Workbench test wheels present ($(workbench_wheels_dir))"
  else
    echo "docker: Workbench test wheels MISSING ($(workbench_wheels_dir))"
    ok=1
  fi
  return $ok
}

docker_env() {
  env_line XP_TEST_DOCKER_PYTHON_IMAGE "$XP_IMAGE_PYTHON"
  env_line XP_TEST_DOCKER_PYSPARK_IMAGE "$XP_IMAGE_PYSPARK"
  env_line XP_TEST_WORKBENCH_WHEELS "$(workbench_wheels_dir)"
  if [ -n "${DOCKER_HOST:-}" ]; then env_line DOCKER_HOST "$DOCKER_HOST"; fi
}
