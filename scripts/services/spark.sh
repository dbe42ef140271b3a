# shellcheck shell=bash
# Spark component: a standalone cluster (1 master, 1 worker) on 127.0.0.1, run from the `pyspark`
# package on PyPI installed into a dedicated, world-readable venv in the per-machine cache.

XP_PYSPARK_VERSION=${XP_TEST_PYSPARK_VERSION:-3.5.9}
XP_SPARK_DIR=$XP_SERVICES_DIR/spark
XP_SPARK_MASTER_PORT=${XP_TEST_SPARK_MASTER_PORT:-7077}
XP_SPARK_UI_PORT=${XP_TEST_SPARK_UI_PORT:-8080}
XP_SPARK_WORKER_UI_PORT=${XP_TEST_SPARK_WORKER_UI_PORT:-8081}
XP_SPARK_WORKER_CORES=${XP_TEST_SPARK_WORKER_CORES:-1}
XP_SPARK_WORKER_MEMORY=${XP_TEST_SPARK_WORKER_MEMORY:-1g}
XP_SPARK_MASTER=spark://127.0.0.1:$XP_SPARK_MASTER_PORT
XP_SPARK_UI=http://127.0.0.1:$XP_SPARK_UI_PORT
XP_SPARK_VENV_ROOT=$XP_SERVICES_CACHE/spark/pyspark-$XP_PYSPARK_VERSION
XP_SPARK_VENV=$XP_SPARK_VENV_ROOT/venv
XP_SPARK_READY=$XP_SPARK_VENV_ROOT/.xp-ready # holds SPARK_HOME once the venv is complete
XP_SPARK_MASTER_PID=$XP_SPARK_DIR/master.pid
XP_SPARK_WORKER_PID=$XP_SPARK_DIR/worker.pid

# Python used to build the wheels and the venv. Debian's /usr/bin/python3 by default: it lives
# outside /root, so other users (the ssh test user) can run the venv's interpreter.
# Sets $XP_BASE_PYTHON.
ensure_base_python() {
  if [ -n "${XP_SERVICES_PYTHON:-}" ]; then XP_BASE_PYTHON=$XP_SERVICES_PYTHON; return; fi
  if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt_ensure python3 python3-venv python3-pip
  fi
  XP_BASE_PYTHON=/usr/bin/python3
}

pyspark_wheels_dir() { echo "$XP_SERVICES_CACHE/wheels/pyspark-$XP_PYSPARK_VERSION"; }

# Build (once per machine) wheels for pyspark and its dependencies into $(pyspark_wheels_dir). pyspark is published as a ~300 MB sdist only; building its wheel once lets both the
# venv and the pyspark image install it offline (--no-index).
ensure_pyspark_wheels() {
  local dir
  dir=$(pyspark_wheels_dir)
  [ -e "$dir/.complete" ] && return 0
  local t0=$SECONDS py tmp
  ensure_base_python
  py=$XP_BASE_PYTHON
  mkdir -p "$XP_SERVICES_CACHE/wheels"
  make_tmp_dir "$XP_SERVICES_CACHE/wheels"
  tmp=$XP_TMP
  log "pyspark: downloading pyspark==$XP_PYSPARK_VERSION from PyPI and building its wheel (once per machine; ~300 MB; log: $XP_LOG_DIR/pip.log)"
  # A throw-away venv provides a current pip/setuptools without touching the system Python.
  run_logged pip.log "$py" -m venv "$tmp/venv" || die "pyspark: python3 -m venv failed"
  run_logged pip.log "$tmp/venv/bin/python" -m pip install --quiet --upgrade pip setuptools wheel \
    || die "pyspark: could not install pip/setuptools/wheel from PyPI (see $XP_LOG_DIR/pip.log)"
  run_logged pip.log "$tmp/venv/bin/python" -m pip wheel --no-cache-dir --progress-bar off \
    --wheel-dir "$tmp/wheels" "pyspark==$XP_PYSPARK_VERSION" \
    || die "pyspark: pip wheel pyspark==$XP_PYSPARK_VERSION failed (see $XP_LOG_DIR/pip.log)"
  rm -rf "$dir"
  mv "$tmp/wheels" "$dir"
  : >"$dir/.complete"
  chmod -R a+rX "$XP_SERVICES_CACHE/wheels"
  log "pyspark: wheels ready in $dir ($(du -sh "$dir" | cut -f1), $(since "$t0"))"
}

ensure_spark_venv() {
  if [ -s "$XP_SPARK_READY" ] && [ -x "$(cat "$XP_SPARK_READY")/bin/spark-submit" ]; then
    log "spark: pyspark $XP_PYSPARK_VERSION venv present (cached: $XP_SPARK_VENV)"
    return 0
  fi
  local t0=$SECONDS py wheels home
  ensure_pyspark_wheels
  wheels=$(pyspark_wheels_dir)
  ensure_base_python
  py=$XP_BASE_PYTHON
  log "spark: creating venv $XP_SPARK_VENV with pyspark $XP_PYSPARK_VERSION"
  rm -rf "$XP_SPARK_VENV_ROOT"
  mkdir -p "$XP_SPARK_VENV_ROOT"
  run_logged pip.log "$py" -m venv "$XP_SPARK_VENV" || die "spark: python3 -m venv failed"
  run_logged pip.log "$XP_SPARK_VENV/bin/python" -m pip install --no-cache-dir --progress-bar off \
    --no-index --find-links "$wheels" "pyspark==$XP_PYSPARK_VERSION" \
    || die "spark: installing pyspark into the venv failed (see $XP_LOG_DIR/pip.log)"
  home=$("$XP_SPARK_VENV/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))') \
    || die "spark: pyspark does not import in $XP_SPARK_VENV"
  chmod a+rx "$home"/bin/* "$home"/sbin/* 2>/dev/null || true
  # World-readable: the ssh test user runs spark-submit from here. Parents must be traversable.
  chmod -R a+rX "$XP_SPARK_VENV_ROOT"
  chmod a+rx "$XP_SERVICES_CACHE" "$XP_SERVICES_CACHE/spark"
  echo "$home" >"$XP_SPARK_READY"
  log "spark: venv ready in $(since "$t0") (SPARK_HOME=$home)"
}

spark_home() { cat "$XP_SPARK_READY" 2>/dev/null; }

# conf/spark-env.sh is read by every spark-class/spark-submit started from this SPARK_HOME,
# whoever runs it: it pins the Python (the venv's, which has pyspark) and keeps all Spark
# endpoints (daemons, driver, UIs) on the loopback interface.
write_spark_env() {
  local home=$1 java_home=""
  if [ -x /usr/bin/java ]; then java_home=$(dirname "$(dirname "$(readlink -f /usr/bin/java)")"); fi
  mkdir -p "$home/conf"
  cat >"$home/conf/spark-env.sh.tmp" <<EOF
# Written by xp scripts/services.sh
export SPARK_LOCAL_IP=127.0.0.1
export PYSPARK_PYTHON=\${PYSPARK_PYTHON:-$XP_SPARK_VENV/bin/python}
export PYSPARK_DRIVER_PYTHON=\${PYSPARK_DRIVER_PYTHON:-$XP_SPARK_VENV/bin/python}
${java_home:+export JAVA_HOME=\${JAVA_HOME:-$java_home}}
EOF
  chmod 0755 "$home/conf"
  chmod 0644 "$home/conf/spark-env.sh.tmp"
  mv "$home/conf/spark-env.sh.tmp" "$home/conf/spark-env.sh"
}

spark_master_json() {
  curl -fsS --max-time 5 "$XP_SPARK_UI/json/" 2>/dev/null
}

# Prints "<status> <alive workers>" from the master's JSON, e.g. "ALIVE 1".
spark_cluster_state() {
  local json
  json=$(spark_master_json) || return 1
  printf '%s' "$json" | "$(host_python)" -c '
import json, sys
d = json.load(sys.stdin)
alive = d.get("aliveworkers")
if alive is None:
    alive = sum(1 for w in d.get("workers", []) if w.get("state") == "ALIVE")
print(d.get("status", "?"), alive)'
}

spark_cluster_healthy() {
  local st
  st=$(spark_cluster_state) || return 1
  [ "${st%% *}" = ALIVE ] && [ "${st##* }" -ge 1 ]
}

spark_check_port_free() {
  local port=$1 what=$2
  if port_listening "$port"; then
    die "spark: port $port ($what) is already in use by $(port_owner "$port" || echo 'another process'), not by a master/worker this script started; stop it or set XP_TEST_SPARK_*_PORT"
  fi
}

spark_launch() {
  local name=$1 pidfile=$2 home=$3
  shift 3
  (
    export SPARK_HOME=$home SPARK_LOCAL_IP=127.0.0.1 SPARK_LOG_DIR=$XP_SPARK_DIR SPARK_PID_DIR=$XP_SPARK_DIR
    cd "$XP_SPARK_DIR" || exit 1
    # 9>&-: daemons must not inherit the lock fd (they would hold the lock forever).
    exec setsid nohup "$home/bin/spark-class" "$@" >>"$XP_SPARK_DIR/$name.log" 2>&1 </dev/null 9>&-
  ) &
  echo $! >"$pidfile"
  log "spark: started $name (pid $!, log: $XP_SPARK_DIR/$name.log)"
}

# A real job on the cluster, run as the ssh test user (through our sshd when it is up) to prove
# the whole path the cluster tests use.
spark_wordcount_check() {
  local submit=$1 t0=$SECONDS job=$XP_SPARK_DIR/wordcount.py out
  cat >"$job" <<'EOF'
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("xp-services-wordcount").getOrCreate()
lines = spark.sparkContext.parallelize(["to be or", "not to be", "that is the question"], 2)
counts = dict(lines.flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b).collect())
print("XP_WORDCOUNT", sorted(counts.items()))
assert counts == {"to": 2, "be": 2, "or": 1, "not": 1, "that": 1, "is": 1, "the": 1, "question": 1}, counts
spark.stop()
EOF
  chmod 0644 "$job"
  local cmd="cd /tmp && '$submit' --master '$XP_SPARK_MASTER' '$job'"
  local how
  if ssh_key_login_works 2>/dev/null; then
    how="as $XP_SSH_USER through sshd on port $(ssh_port)"
    log "spark: running a word count on $XP_SPARK_MASTER $how"
    out=$(ssh_run_as_test_user "$cmd" 2>&1) || die "spark: word count job failed $how: $(echo "$out" | tail -n 30)"
  elif id "$XP_SSH_USER" >/dev/null 2>&1 && is_root; then
    how="as $XP_SSH_USER (runuser -l)"
    log "spark: running a word count on $XP_SPARK_MASTER $how"
    out=$(runuser -l "$XP_SSH_USER" -c "$cmd" 2>&1 </dev/null) || die "spark: word count job failed $how: $(echo "$out" | tail -n 30)"
  else
    how="as $(id -un)"
    log "spark: running a word count on $XP_SPARK_MASTER $how"
    out=$(bash -c "$cmd" 2>&1 </dev/null) || die "spark: word count job failed $how: $(echo "$out" | tail -n 30)"
  fi
  echo "$out" | grep -q "^XP_WORDCOUNT" || die "spark: word count printed no result $how: $(echo "$out" | tail -n 30)"
  log "spark: word count ok $how in $(since "$t0"): $(echo "$out" | grep '^XP_WORDCOUNT' | cut -c14-)"
}

spark_start() {
  local t0=$SECONDS home mpid wpid started=0
  mkdir -p "$XP_SPARK_DIR" "$XP_SPARK_DIR/work"
  chmod 0755 "$XP_SPARK_DIR"
  command -v java >/dev/null 2>&1 || apt_ensure openjdk-17-jre-headless
  command -v curl >/dev/null 2>&1 || apt_ensure curl
  ensure_spark_venv
  home=$(spark_home)
  write_spark_env "$home"

  mpid=$(pid_from_file "$XP_SPARK_MASTER_PID" deploy.master.Master) || mpid=""
  wpid=$(pid_from_file "$XP_SPARK_WORKER_PID" deploy.worker.Worker) || wpid=""
  if [ -n "$mpid" ] && [ -n "$wpid" ] && spark_cluster_healthy; then
    log "spark: master (pid $mpid) and worker (pid $wpid) already running and healthy; reusing them"
    log "spark: ready in $(since "$t0")"
    return 0
  fi

  if [ -z "$mpid" ]; then
    spark_check_port_free "$XP_SPARK_MASTER_PORT" "master"
    spark_check_port_free "$XP_SPARK_UI_PORT" "master web UI"
    spark_launch master "$XP_SPARK_MASTER_PID" "$home" org.apache.spark.deploy.master.Master \
      --host 127.0.0.1 --port "$XP_SPARK_MASTER_PORT" --webui-port "$XP_SPARK_UI_PORT"
    started=1
    wait_until 90 "the Spark master web UI at $XP_SPARK_UI/json/" spark_master_json \
      || { tail -n 30 "$XP_SPARK_DIR/master.log" | sed 's/^/    | /' >&2; die "spark: master did not come up (see $XP_SPARK_DIR/master.log)"; }
  else
    log "spark: master already running (pid $mpid); reusing it"
  fi
  if [ -z "$wpid" ]; then
    spark_check_port_free "$XP_SPARK_WORKER_UI_PORT" "worker web UI"
    spark_launch worker "$XP_SPARK_WORKER_PID" "$home" org.apache.spark.deploy.worker.Worker \
      "$XP_SPARK_MASTER" --host 127.0.0.1 --cores "$XP_SPARK_WORKER_CORES" --memory "$XP_SPARK_WORKER_MEMORY" \
      --webui-port "$XP_SPARK_WORKER_UI_PORT" --work-dir "$XP_SPARK_DIR/work"
    started=1
  else
    log "spark: worker already running (pid $wpid); reusing it"
  fi
  wait_until 90 "1 ALIVE worker in $XP_SPARK_UI/json/" spark_cluster_healthy \
    || { tail -n 30 "$XP_SPARK_DIR/worker.log" | sed 's/^/    | /' >&2; die "spark: no ALIVE worker registered (see $XP_SPARK_DIR/master.log, worker.log)"; }
  log "spark: cluster up: $(spark_cluster_state | awk '{print "master "$1", "$2" alive worker(s)"}')"
  if [ "$started" = 1 ] || [ ! -e "$XP_SPARK_DIR/wordcount.ok" ]; then
    spark_wordcount_check "$home/bin/spark-submit"
    : >"$XP_SPARK_DIR/wordcount.ok"
  fi
  log "spark: ready in $(since "$t0")"
}

spark_stop() {
  rm -f "$XP_SPARK_DIR/wordcount.ok"
  stop_pid_file "$XP_SPARK_WORKER_PID" deploy.worker.Worker "spark: worker"
  stop_pid_file "$XP_SPARK_MASTER_PID" deploy.master.Master "spark: master"
}

spark_status() {
  local mpid wpid st
  mpid=$(pid_from_file "$XP_SPARK_MASTER_PID" deploy.master.Master) || mpid=""
  wpid=$(pid_from_file "$XP_SPARK_WORKER_PID" deploy.worker.Worker) || wpid=""
  if st=$(spark_cluster_state) && spark_cluster_healthy; then
    echo "spark: UP $XP_SPARK_MASTER (master ${mpid:-not ours}, worker ${wpid:-not ours}; ${st%% *}, ${st##* } alive worker(s)); UI $XP_SPARK_UI"
    return 0
  fi
  echo "spark: DOWN (master pid ${mpid:-none}, worker pid ${wpid:-none}, UI state: ${st:-no answer})"
  return 1
}

spark_env() {
  local home
  home=$(spark_home)
  [ -n "$home" ] || warn "spark: venv not built yet; run 'scripts/services.sh start spark'"
  env_line XP_TEST_SPARK_MASTER "$XP_SPARK_MASTER"
  env_line XP_TEST_SPARK_HOME "$home"
  env_line XP_TEST_SPARK_SUBMIT "${home:+$home/bin/spark-submit}"
  env_line XP_TEST_SPARK_UI "$XP_SPARK_UI"
  env_line XP_TEST_SPARK_PYTHON "${home:+$XP_SPARK_VENV/bin/python}"
}
