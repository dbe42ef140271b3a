# shellcheck shell=bash
# SSH component: a private sshd (never the system one) on 127.0.0.1 with its own config and host
# key, plus two test users: xptest (public-key auth) and xptestpw (password auth).

XP_SSH_DIR=$XP_SERVICES_DIR/ssh
XP_SSH_USER=xptest
XP_SSH_PW_USER=xptestpw
XP_SSH_CONFIG=$XP_SSH_DIR/sshd_config
XP_SSH_PIDFILE=$XP_SSH_DIR/sshd.pid
XP_SSH_PORTFILE=$XP_SSH_DIR/port
XP_SSH_HOST_KEY=$XP_SSH_DIR/ssh_host_ed25519_key
XP_SSH_CLIENT_KEY=$XP_SSH_DIR/id_ed25519
XP_SSH_PASSWORD_FILE=$XP_SSH_DIR/$XP_SSH_PW_USER.password
XP_SSH_KNOWN_HOSTS=$XP_SSH_DIR/known_hosts
XP_SSH_AUTH_DIR=$XP_SSH_DIR/authorized_keys

XP_SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
  -o ConnectTimeout=10 -o BatchMode=yes)

ssh_port() { cat "$XP_SSH_PORTFILE" 2>/dev/null; }

ssh_run_as_test_user() {
  ssh -n -p "$(ssh_port)" -i "$XP_SSH_CLIENT_KEY" -o IdentitiesOnly=yes "${XP_SSH_OPTS[@]}" \
    "$XP_SSH_USER@127.0.0.1" "$@"
}

ssh_key_login_works() {
  [ -s "$XP_SSH_PORTFILE" ] && [ -r "$XP_SSH_CLIENT_KEY" ] || return 1
  pid_from_file "$XP_SSH_PIDFILE" "$XP_SSH_CONFIG" >/dev/null || return 1
  timeout 20 ssh -n -p "$(ssh_port)" -i "$XP_SSH_CLIENT_KEY" -o IdentitiesOnly=yes "${XP_SSH_OPTS[@]}" \
    "$XP_SSH_USER@127.0.0.1" true >/dev/null 2>&1
}

ssh_password_login_works() {
  timeout 20 sshpass -f "$XP_SSH_PASSWORD_FILE" ssh -n -p "$(ssh_port)" \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 \
    -o PubkeyAuthentication=no -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1 \
    "$XP_SSH_PW_USER@127.0.0.1" true
}

# Create (or repair) a test user: system account, home dir, bash, in the docker socket's group.
ensure_test_user() {
  local user=$1 group
  if id "$user" >/dev/null 2>&1; then
    [ "$(getent passwd "$user" | cut -d: -f7)" = /bin/bash ] || usermod -s /bin/bash "$user"
  else
    log "ssh: creating system user $user"
    useradd --system --user-group --create-home --home-dir "/home/$user" --shell /bin/bash "$user"
  fi
  local home
  home=$(getent passwd "$user" | cut -d: -f6)
  if [ ! -d "$home" ]; then
    mkdir -p "$home"
    cp -rT /etc/skel "$home" 2>/dev/null || true
    chown -R "$user:" "$home"
  fi
  group=$(docker_socket_group 2>/dev/null || true)
  [ -n "$group" ] && [ "$group" != root ] || group=docker
  if getent group "$group" >/dev/null 2>&1; then
    if ! id -nG "$user" | tr ' ' '\n' | grep -qx "$group"; then
      log "ssh: adding $user to group $group (Docker access)"
      usermod -aG "$group" "$user"
    fi
  else
    warn "ssh: no '$group' group on this machine; $user cannot use Docker"
  fi
}

ssh_choose_port() {
  local port
  if pid_from_file "$XP_SSH_PIDFILE" "$XP_SSH_CONFIG" >/dev/null && [ -s "$XP_SSH_PORTFILE" ]; then
    ssh_port
    return
  fi
  if [ -n "${XP_TEST_SSH_PORT:-}" ]; then
    port_listening "$XP_TEST_SSH_PORT" \
      && die "ssh: XP_TEST_SSH_PORT=$XP_TEST_SSH_PORT is already in use by $(port_owner "$XP_TEST_SSH_PORT" || echo 'another process')"
    echo "$XP_TEST_SSH_PORT"
    return
  fi
  for port in $(seq 2222 2299); do
    if ! port_listening "$port"; then
      echo "$port"
      return
    fi
  done
  die "ssh: no free loopback port in 2222-2299"
}

ssh_write_config() {
  local port=$1
  cat >"$XP_SSH_CONFIG.tmp" <<EOF
# Private sshd for xp end-to-end tests. Written by scripts/services.sh; do not edit.
Port $port
ListenAddress 127.0.0.1
HostKey $XP_SSH_HOST_KEY
PidFile $XP_SSH_PIDFILE
UsePAM no
PasswordAuthentication yes
PermitEmptyPasswords no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile $XP_SSH_AUTH_DIR/%u .ssh/authorized_keys
StrictModes no
PermitRootLogin no
AllowUsers $XP_SSH_USER $XP_SSH_PW_USER
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
PrintLastLog no
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
# Tests open many connections at once.
MaxStartups 200:30:400
MaxSessions 100
LoginGraceTime 30
LogLevel VERBOSE
EOF
  mv "$XP_SSH_CONFIG.tmp" "$XP_SSH_CONFIG"
}

ssh_start() {
  local t0=$SECONDS pid port
  is_root || die "ssh: needs root (creates users, runs sshd)"
  mkdir -p "$XP_SSH_DIR" "$XP_SSH_AUTH_DIR"
  chmod 0755 "$XP_SSH_DIR" "$XP_SSH_AUTH_DIR"
  [ -x /usr/sbin/sshd ] || apt_ensure openssh-server
  command -v ssh >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1 || apt_ensure openssh-client
  command -v sshpass >/dev/null 2>&1 || apt_ensure sshpass

  # Keys and the password: generated once (per state dir), reused afterwards.
  if [ ! -s "$XP_SSH_HOST_KEY" ]; then
    log "ssh: generating host key $XP_SSH_HOST_KEY"
    rm -f "$XP_SSH_HOST_KEY" "$XP_SSH_HOST_KEY.pub"
    ssh-keygen -q -t ed25519 -N '' -C "xp-services-host" -f "$XP_SSH_HOST_KEY" </dev/null
  fi
  if [ ! -s "$XP_SSH_CLIENT_KEY" ]; then
    log "ssh: generating client key $XP_SSH_CLIENT_KEY for $XP_SSH_USER"
    rm -f "$XP_SSH_CLIENT_KEY" "$XP_SSH_CLIENT_KEY.pub"
    ssh-keygen -q -t ed25519 -N '' -C "xp-services-$XP_SSH_USER" -f "$XP_SSH_CLIENT_KEY" </dev/null
  fi
  chmod 0600 "$XP_SSH_HOST_KEY" "$XP_SSH_CLIENT_KEY"
  # The password is per machine (the user is): kept in the cache, copied into the state dir, so
  # a wiped /tmp or a second state dir does not change the password under a running sshd.
  local pw_cache=$XP_SERVICES_CACHE/ssh/$XP_SSH_PW_USER.password
  if [ ! -s "$pw_cache" ]; then
    log "ssh: generating a random password for $XP_SSH_PW_USER ($pw_cache)"
    (umask 077 && mkdir -p "$(dirname "$pw_cache")" \
      && openssl rand -base64 30 | tr -dc 'A-Za-z0-9' | head -c 24 >"$pw_cache.tmp" && mv "$pw_cache.tmp" "$pw_cache")
  fi
  chmod 0700 "$(dirname "$pw_cache")"
  (umask 077 && cp "$pw_cache" "$XP_SSH_PASSWORD_FILE")
  chmod 0600 "$pw_cache" "$XP_SSH_PASSWORD_FILE"

  ensure_test_user "$XP_SSH_USER"
  ensure_test_user "$XP_SSH_PW_USER"
  # xptest logs in with its key only; '*' = no usable password but NOT locked ('!' would make
  # sshd without PAM refuse even public-key logins).
  usermod -p '*' "$XP_SSH_USER"
  printf '%s:%s\n' "$XP_SSH_PW_USER" "$(cat "$XP_SSH_PASSWORD_FILE")" | chpasswd

  # Authorized key: in the sshd's per-user file and in the user's own ~/.ssh/authorized_keys.
  local pub home
  pub=$(cat "$XP_SSH_CLIENT_KEY.pub")
  printf '%s\n' "$pub" >"$XP_SSH_AUTH_DIR/$XP_SSH_USER"
  chown "$XP_SSH_USER:" "$XP_SSH_AUTH_DIR/$XP_SSH_USER"
  chmod 0600 "$XP_SSH_AUTH_DIR/$XP_SSH_USER"
  home=$(getent passwd "$XP_SSH_USER" | cut -d: -f6)
  install -d -m 0700 -o "$XP_SSH_USER" -g "$(id -gn "$XP_SSH_USER")" "$home/.ssh"
  if ! grep -qxF "$pub" "$home/.ssh/authorized_keys" 2>/dev/null; then
    printf '%s\n' "$pub" >>"$home/.ssh/authorized_keys"
  fi
  chown "$XP_SSH_USER:" "$home/.ssh/authorized_keys"
  chmod 0600 "$home/.ssh/authorized_keys"

  if pid=$(pid_from_file "$XP_SSH_PIDFILE" "$XP_SSH_CONFIG") && ssh_key_login_works; then
    log "ssh: our sshd (pid $pid) on 127.0.0.1:$(ssh_port) answers; reusing it"
  else
    if [ -n "${pid:-}" ]; then
      warn "ssh: our sshd (pid $pid) does not accept logins; restarting it"
      stop_pid_file "$XP_SSH_PIDFILE" "$XP_SSH_CONFIG" "ssh: sshd"
    fi
    port=$(ssh_choose_port)
    echo "$port" >"$XP_SSH_PORTFILE"
    ssh_write_config "$port"
    mkdir -p /run/sshd && chmod 0755 /run/sshd # privilege separation dir Debian's sshd requires
    /usr/sbin/sshd -t -f "$XP_SSH_CONFIG" 2>"$XP_SSH_DIR/sshd-configtest.log" \
      || die "ssh: sshd rejects $XP_SSH_CONFIG: $(cat "$XP_SSH_DIR/sshd-configtest.log")"
    rm -f "$XP_SSH_PIDFILE"
    log "ssh: starting private sshd on 127.0.0.1:$port (config $XP_SSH_CONFIG, log $XP_SSH_DIR/sshd.log)"
    /usr/sbin/sshd -f "$XP_SSH_CONFIG" -E "$XP_SSH_DIR/sshd.log" </dev/null 9>&- \
      || die "ssh: sshd failed to start; see $XP_SSH_DIR/sshd.log"
    wait_until 20 "sshd to write $XP_SSH_PIDFILE and listen on $port" \
      bash -c "[ -s '$XP_SSH_PIDFILE' ] && ss -Hltn | grep -q '127.0.0.1:$port '" \
      || die "ssh: sshd did not come up; see $XP_SSH_DIR/sshd.log"
  fi
  port=$(ssh_port)
  printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$XP_SSH_HOST_KEY.pub")" >"$XP_SSH_KNOWN_HOSTS"
  chmod 0644 "$XP_SSH_KNOWN_HOSTS" "$XP_SSH_HOST_KEY.pub" "$XP_SSH_CLIENT_KEY.pub"

  # Real logins: key, password, and Docker access for the key user.
  local out
  out=$(ssh_run_as_test_user 'echo "$(id -un) $HOME $SHELL"' 2>&1) \
    || die "ssh: key login $XP_SSH_USER@127.0.0.1:$port failed: $out (see $XP_SSH_DIR/sshd.log)"
  log "ssh: key login ok ($out)"
  out=$(ssh_password_login_works 2>&1) \
    || die "ssh: password login $XP_SSH_PW_USER@127.0.0.1:$port failed: $out (see $XP_SSH_DIR/sshd.log)"
  log "ssh: password login ok ($XP_SSH_PW_USER)"
  if command -v docker >/dev/null 2>&1 && docker_answers; then
    out=$(ssh_run_as_test_user 'docker version -f "{{.Server.Version}}"' 2>&1) \
      || die "ssh: $XP_SSH_USER cannot use Docker over ssh: $out"
    log "ssh: $XP_SSH_USER can use Docker (server $out)"
  else
    warn "ssh: Docker not answering; skipped the remote-docker access check"
  fi
  log "ssh: ready on 127.0.0.1:$port in $(since "$t0")"
}

ssh_stop() {
  stop_pid_file "$XP_SSH_PIDFILE" "$XP_SSH_CONFIG" "ssh: sshd"
}

ssh_status() {
  local pid
  if pid=$(pid_from_file "$XP_SSH_PIDFILE" "$XP_SSH_CONFIG"); then
    if ssh_key_login_works; then
      echo "ssh: UP 127.0.0.1:$(ssh_port) (sshd pid $pid; key login as $XP_SSH_USER ok)"
      return 0
    fi
    echo "ssh: UNHEALTHY 127.0.0.1:$(ssh_port) (sshd pid $pid running, key login fails)"
    return 1
  fi
  echo "ssh: DOWN"
  return 1
}

ssh_env() {
  local port pw=""
  port=$(ssh_port)
  [ -n "$port" ] || warn "ssh: not started yet; run 'scripts/services.sh start ssh'"
  [ -r "$XP_SSH_PASSWORD_FILE" ] && pw=$(cat "$XP_SSH_PASSWORD_FILE")
  env_line XP_TEST_SSH_HOST 127.0.0.1
  env_line XP_TEST_SSH_PORT "$port"
  env_line XP_TEST_SSH_USER "$XP_SSH_USER"
  env_line XP_TEST_SSH_KEY "$XP_SSH_CLIENT_KEY"
  env_line XP_TEST_SSH_PASSWORD_USER "$XP_SSH_PW_USER"
  env_line XP_TEST_SSH_PASSWORD "$pw"
  env_line XP_TEST_SSH_HOST_KEY "$XP_SSH_HOST_KEY.pub"
  env_line XP_TEST_SSH_KNOWN_HOSTS "$XP_SSH_KNOWN_HOSTS"
}
