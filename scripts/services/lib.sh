# shellcheck shell=bash
# Shared helpers for scripts/services.sh. Sourced, never run directly.
#
# Layout on disk:
#   $XP_SERVICES_DIR   (default /tmp/xp-services)  per-boot state: pid files, logs, configs, keys,
#                                                   password. Mode 0755 so the ssh test users can
#                                                   read their authorized_keys and the check job.
#   $XP_SERVICES_CACHE (default /var/cache/xp-services as root, ~/.cache/xp-services otherwise)
#                                                   per-machine cache: pyspark wheels, the pyspark
#                                                   venv. Not under /root: /root is 0700 and the
#                                                   ssh test user must be able to run spark-submit.

XP_SERVICES_DIR=${XP_SERVICES_DIR:-/tmp/xp-services}
# `start` records the cache it used, so `env`/`status` from another user report the same paths.
if [ -z "${XP_SERVICES_CACHE:-}" ] && [ -s "$XP_SERVICES_DIR/cache-dir" ]; then
  XP_SERVICES_CACHE=$(cat "$XP_SERVICES_DIR/cache-dir")
fi
if [ -z "${XP_SERVICES_CACHE:-}" ]; then
  if [ "$(id -u)" = 0 ]; then
    XP_SERVICES_CACHE=/var/cache/xp-services
  else
    XP_SERVICES_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/xp-services
  fi
fi
export XP_SERVICES_DIR XP_SERVICES_CACHE

XP_LOG_DIR=$XP_SERVICES_DIR/logs
XP_TMP_PATHS=()

log() { printf '[xp-services %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
warn() { log "WARNING: $*"; }
die() {
  log "ERROR: $*"
  exit 1
}

# Elapsed seconds since $1 (a $SECONDS value).
since() { echo "$((SECONDS - $1))s"; }

# env_line NAME VALUE: one shell-quoted `export` line for `eval "$(services.sh env)"`.
env_line() { printf 'export %s=%q\n' "$1" "$2"; }

is_root() { [ "$(id -u)" = 0 ]; }

# Run a command as root (directly, or through password-less sudo).
as_root() {
  if is_root; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "root is needed to run: $* (run this script as root or with password-less sudo)"
  fi
}

ensure_state_dir() {
  mkdir -p "$XP_SERVICES_DIR" "$XP_LOG_DIR" "$XP_SERVICES_CACHE"
  chmod 0755 "$XP_SERVICES_DIR" "$XP_LOG_DIR"
  echo "$XP_SERVICES_CACHE" >"$XP_SERVICES_DIR/cache-dir"
}

# Serialise start/stop: the test suite may call `start` from several processes at once.
take_lock() {
  exec 9>"$XP_SERVICES_DIR/.lock"
  if ! flock -n 9; then
    log "another services.sh start/stop holds $XP_SERVICES_DIR/.lock; waiting (up to 60 min)"
    flock -w 3600 9 || die "could not take $XP_SERVICES_DIR/.lock"
  fi
}

# Run "$@" with its output going to log file $1 (relative names go to $XP_LOG_DIR); on failure
# print the tail of that log and return the command's status.
run_logged() {
  local logfile=$1
  shift
  case $logfile in /*) ;; *) logfile=$XP_LOG_DIR/$logfile ;; esac
  {
    printf '\n==== %s: %s\n' "$(date '+%F %T')" "$*"
  } >>"$logfile"
  local rc=0
  "$@" >>"$logfile" 2>&1 </dev/null || rc=$?
  if [ "$rc" != 0 ]; then
    log "command failed (exit $rc): $*"
    log "last lines of $logfile:"
    tail -n 60 "$logfile" | sed 's/^/    | /' >&2
  fi
  return "$rc"
}

# ---- temporary paths, removed on exit (unmounting anything left mounted below them first) ----

cleanup_tmp_paths() {
  local p m
  for p in "${XP_TMP_PATHS[@]}"; do
    [ -e "$p" ] || continue
    # debootstrap mounts /proc etc. inside its target; never rm -rf through a mount.
    while read -r m; do
      [ -n "$m" ] && umount -l "$m" 2>/dev/null || true
    done < <(findmnt -rn -o TARGET 2>/dev/null | grep -F "$p/" | sort -r)
    rm -rf --one-file-system "$p" 2>/dev/null || true
  done
}
trap cleanup_tmp_paths EXIT

# make_tmp_dir PARENT: create a temp dir under PARENT, store its path in $XP_TMP (no $(...):
# the registration must happen in this shell for the EXIT trap to see it).
make_tmp_dir() {
  XP_TMP=$(mktemp -d "$1/tmp.XXXXXX")
  XP_TMP_PATHS+=("$XP_TMP")
}

# ---- apt ----

XP_APT_UPDATED=0

pkg_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# apt_ensure PKG...: install the Debian packages that are missing (no-op when all are present).
apt_ensure() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "packages missing (${missing[*]}) and no apt-get to install them"
  local t0=$SECONDS
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  local aptopts=(-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  if [ "$XP_APT_UPDATED" = 0 ]; then
    run_logged apt.log as_root apt-get "${aptopts[@]}" update || die "apt-get update failed (see $XP_LOG_DIR/apt.log)"
    XP_APT_UPDATED=1
  fi
  # Packages like openssh-server start their system service from postinst; we never want that
  # (we run our own daemons). A policy-rc.d that exits 101 forbids it, as in Docker images.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 0755 $policy"
    added_policy=1
  fi
  local rc=0
  run_logged apt.log as_root apt-get "${aptopts[@]}" install -y --no-install-recommends "${missing[@]}" || rc=$?
  [ "$added_policy" = 1 ] && as_root rm -f "$policy"
  [ "$rc" = 0 ] || die "apt-get install ${missing[*]} failed (see $XP_LOG_DIR/apt.log)"
  log "apt: installed ${missing[*]} in $(since "$t0")"
}

# ---- processes and ports ----

# pid_from_file FILE PATTERN: print the pid in FILE when that process is alive and its command
# line contains PATTERN (guards against pid reuse); return 1 otherwise.
pid_from_file() {
  local file=$1 pattern=$2 pid
  [ -s "$file" ] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern" || return 1
  echo "$pid"
}

# Alive and not a zombie (an exited daemon whose parent is init may linger as a zombie).
pid_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# stop_pid_file FILE PATTERN NAME: stop the process recorded in FILE (and its process group when
# it leads one), TERM first, KILL after a grace period. Only processes we recorded are touched.
stop_pid_file() {
  local file=$1 pattern=$2 name=$3 pid pgid
  if ! pid=$(pid_from_file "$file" "$pattern"); then
    if [ -e "$file" ]; then
      log "$name: not running (removing stale $file)"
      rm -f "$file"
    else
      log "$name: not started by this script; nothing to stop"
    fi
    return 0
  fi
  pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')
  log "$name: stopping pid $pid"
  if [ "$pgid" = "$pid" ]; then kill -TERM -- "-$pid" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
  for _ in $(seq 1 150); do
    pid_alive "$pid" || break
    sleep 0.2
  done
  if pid_alive "$pid"; then
    warn "$name: pid $pid ignored SIGTERM for 30s; sending SIGKILL"
    if [ "$pgid" = "$pid" ]; then kill -KILL -- "-$pid" 2>/dev/null || true; else kill -KILL "$pid" 2>/dev/null || true; fi
    sleep 0.5
  fi
  # Leftover members of the group (e.g. Spark executors) go too.
  if [ "$pgid" = "$pid" ] && pgrep -g "$pid" >/dev/null 2>&1; then
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$file"
  log "$name: stopped"
}

# Is anything listening on 127.0.0.1:PORT (or on a wildcard address at PORT)?
port_listening() {
  ss -Hltn 2>/dev/null | awk '{print $4}' | grep -Eq "(^|[^0-9])(127\.0\.0\.1|0\.0\.0\.0|\*|\[::\]|\[::ffff:127\.0\.0\.1\]):$1\$"
}

# Which process listens on PORT (best effort, for error messages).
port_owner() {
  ss -Hltnp 2>/dev/null | awk -v p=":$1" '$4 ~ p"$" {print $NF}' | head -n1
}

# wait_until TIMEOUT_SECONDS DESCRIPTION CMD...: poll CMD every half second.
wait_until() {
  local timeout=$1 desc=$2 deadline
  shift 2
  deadline=$((SECONDS + timeout))
  while ! "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "timed out after ${timeout}s waiting for $desc"
      return 1
    fi
    sleep 0.5
  done
}

# A python3 for small helper snippets (JSON parsing, PEM splitting).
host_python() {
  if [ -x /usr/bin/python3 ]; then echo /usr/bin/python3; else command -v python3; fi
}
