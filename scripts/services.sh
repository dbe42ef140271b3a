#!/usr/bin/env bash
# Real services for xp's end-to-end tests (shared by the test suite and CI).
#
#   scripts/services.sh start  [docker|ssh|spark|browser ...]   start what is missing, reuse what is up
#   scripts/services.sh stop   [docker|ssh|spark|browser ...]   stop only what this script started
#   scripts/services.sh status [docker|ssh|spark|browser ...]   health of each (exit 1 if any down)
#   scripts/services.sh env    [docker|ssh|spark|browser ...]   `export XP_TEST_...=...` lines for the tests
#
# With XP_SERVICES_OWNER set (scripts/test.sh sets it), `start` records which components it had
# to launch under that name, and `stop` stops only those: a test run never stops services that
# were already up when it began (another test run, or a developer, may be using them).
#
# Components (all by default):
#   docker  a Docker daemon (installs docker.io and starts dockerd only if none answers), the
#           locally built images xp-test/python:bookworm and xp-test/pyspark:bookworm, and the
#           wheels of the Workbench test project (pandas, scikit-learn; downloaded once)
#   ssh     a private sshd on 127.0.0.1:2222 (or the next free port; XP_TEST_SSH_PORT forces one)
#           with test users xptest (key) and xptestpw (password)
#   spark   a standalone Spark cluster (master 127.0.0.1:7077, UI :8080, one worker) from PyPI's
#           pyspark
#   browser Debian's chromium and chromium-driver (installed when missing), for the web view's
#           browser tests
#
# State (pids, logs, keys, configs): ${XP_SERVICES_DIR:-/tmp/xp-services}
# Cache (wheels, pyspark venv, per machine): ${XP_SERVICES_CACHE:-/var/cache/xp-services as root}
# Logs go to stderr; only `env` writes to stdout, so `eval "$(scripts/services.sh env)"` works.
# Needs root for first-time setup (apt, users, sshd); everything is cached after that.

set -euo pipefail
shopt -s inherit_errexit

XP_SERVICES_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/services" && pwd)
# shellcheck source=services/lib.sh
. "$XP_SERVICES_SRC/lib.sh"
# shellcheck source=services/docker.sh
. "$XP_SERVICES_SRC/docker.sh"
# shellcheck source=services/ssh.sh
. "$XP_SERVICES_SRC/ssh.sh"
# shellcheck source=services/spark.sh
. "$XP_SERVICES_SRC/spark.sh"
# shellcheck source=services/browser.sh
. "$XP_SERVICES_SRC/browser.sh"

ALL_COMPONENTS=(docker ssh spark browser)

usage() {
  sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 1 ] || usage
cmd=$1
shift
components=("$@")
[ ${#components[@]} -gt 0 ] || components=("${ALL_COMPONENTS[@]}")
for c in "${components[@]}"; do
  case $c in docker | ssh | spark | browser) ;; *)
    log "unknown component '$c' (expected: ${ALL_COMPONENTS[*]})"
    usage
    ;;
  esac
done

has_component() {
  local c
  for c in "${components[@]}"; do [ "$c" = "$1" ] && return 0; done
  return 1
}

case $cmd in
  start)
    ensure_state_dir
    take_lock
    t_start=$SECONDS
    log "start: ${components[*]} (state $XP_SERVICES_DIR, cache $XP_SERVICES_CACHE)"
    # Order matters: Docker first (the ssh users join the docker socket's group), then ssh
    # (the Spark check job runs through it), then Spark.
    mkdir -p "$XP_SERVICES_DIR/owners"
    for c in "${ALL_COMPONENTS[@]}"; do
      has_component "$c" || continue
      was_up=0
      "${c}_status" >/dev/null 2>&1 && was_up=1
      "${c}_start"
      if [ "$was_up" = 0 ] && [ -n "${XP_SERVICES_OWNER:-}" ]; then
        echo "$XP_SERVICES_OWNER" >"$XP_SERVICES_DIR/owners/$c"
      fi
    done
    log "start: all requested services ready in $(since "$t_start")"
    ;;
  stop)
    ensure_state_dir
    take_lock
    # Reverse order.
    for c in browser spark ssh docker; do
      has_component "$c" || continue
      if [ -n "${XP_SERVICES_OWNER:-}" ] \
        && [ "$(cat "$XP_SERVICES_DIR/owners/$c" 2>/dev/null)" != "$XP_SERVICES_OWNER" ]; then
        log "$c: already up before $XP_SERVICES_OWNER started; leaving it running"
        continue
      fi
      "${c}_stop"
      rm -f "$XP_SERVICES_DIR/owners/$c"
    done
    log "stop: done"
    ;;
  status)
    rc=0
    for c in "${ALL_COMPONENTS[@]}"; do
      if has_component "$c"; then "${c}_status" || rc=1; fi
    done
    exit $rc
    ;;
  env)
    env_line XP_SERVICES_DIR "$XP_SERVICES_DIR"
    for c in "${ALL_COMPONENTS[@]}"; do
      if has_component "$c"; then "${c}_env"; fi
    done
    ;;
  -h | --help | help) usage ;;
  *)
    log "unknown command '$cmd'"
    usage
    ;;
esac
exit 0
