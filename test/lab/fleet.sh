#!/usr/bin/env bash
# The fleet lab: each "VM" is a network namespace with a veth pair to the host, running a real sshd,
# nginx, redis and (db-1) postgres. A libvirt test-driver XML maps the domain names to those
# addresses, and a generated clonebox.yaml checks them. See test/lab/README.md.
#
#   fleet.sh up                      build the lab, or bring it back to its healthy baseline
#   fleet.sh down [--purge]          remove it (keeps ssh keys and the postgres template unless --purge)
#   fleet.sh status                  one line per VM; exit 0 when every expected service answers
#   fleet.sh fault VM stop|start|freeze|thaw SERVICE    SERVICE: sshd nginx redis postgres
#   fleet.sh fault VM link down|up                       the VM's NIC (eth0 inside the namespace)
#   fleet.sh fault VM disk PERCENT                       fill the VM's data tmpfs to about PERCENT used
#   fleet.sh fault VM hostkey rotate|restore             new sshd host key; known_hosts keeps the old one
#   fleet.sh fault VM freeze-ssh|thaw-ssh                every sshd process of the VM (mid-session freeze)
#   fleet.sh fault VM blackhole on|off                   drop every packet the VM receives
#   fleet.sh fault VM slowauth SECONDS|off               sshd takes SECONDS to accept a key
#   fleet.sh fault VM nohosts on|off                     sshd sees no /etc/hosts and no resolver
#   fleet.sh fault VM clear                              undo every fault on VM
#
# Network rule: the only addresses used are 10.213.0.0/16 on veths into namespaces made here, and
# loopback inside them. Namespaces get no default route, and while the lab is up the host has
# `unreachable 10.213.0.0/16`, so traffic for a VM whose link is down fails here, never takes eth0.
#
# Written to fork little (a fork costs 5-30 ms on these machines): a warm `up` is a few `ip`/`ss`
# calls per VM, run in parallel.
set -euo pipefail
umask 022

here=${BASH_SOURCE[0]%/*}
[[ $here != "${BASH_SOURCE[0]}" ]] || here=.
REPO=$(cd "$here/../.." && pwd)
LAB=${CLONEBOX_LAB_DIR:-$REPO/.lab}
[[ $LAB == /* && $LAB != */ && $LAB != *//* && $LAB != */./* && $LAB != */../* ]] || LAB=$(realpath -m "$LAB")
[[ $LAB != *[[:space:]]* ]] || { echo "fleet: CLONEBOX_LAB_DIR must not contain spaces: '$LAB'" >&2; exit 1; }
URI="test://$LAB/libvirt/node.xml"

# Several labs may run side by side (one per git worktree): each takes its own name prefix and /16.
NSP=${CLONEBOX_LAB_NS:-cbx}          # namespace, veth and libvirt network prefix (at most 4 characters)
NET_PREFIX=${CLONEBOX_LAB_NET:-10.213} # VM n: host side $NET_PREFIX.n.1/30, VM $NET_PREFIX.n.2/30
[[ $NSP =~ ^[a-z][a-z0-9]{0,3}$ ]] || { echo "fleet: CLONEBOX_LAB_NS must be 1-4 lowercase letters or digits, starting with a letter" >&2; exit 1; }
[[ $NET_PREFIX =~ ^10\.([0-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5])$ ]] || { echo "fleet: CLONEBOX_LAB_NET must be 10.X (a private /16)" >&2; exit 1; }
NET_CIDR=$NET_PREFIX.0.0/16
DATA_SIZE=16m     # each VM's data tmpfs
BIG_BYTES=$((100 * 1024 * 1024))
PG_BIN=${CLONEBOX_PG_BIN:-}
if [[ -z $PG_BIN ]]; then
  for PG_BIN in /usr/lib/postgresql/{15,16,17,14,13}/bin ''; do [[ -z $PG_BIN || -x $PG_BIN/initdb ]] && break; done
fi

# The fleet, in libvirt file order (ids go 1, 2, 3… to running and paused domains in this order).
# name n role. Roles: web; degraded (nginx /health answers 503); db (adds postgres on the
# namespace's 127.0.0.1 only); paused (a namespace with its link down and nothing running, so its
# address answers nothing, like a paused guest's); shutoff (libvirt only: it reports no address).
FLEET=(
  "web-1 1 web"
  "web-2 2 web"
  "web-3 3 degraded"
  "db-1 4 db"
  "paused-1 5 paused"
  "off-1 6 shutoff"
)

declare -A ROLE ADDR HADDR NSN DIR SVCS PORTS PIDFILE
NS_VMS=()  # VMs that run services
NET_VMS=() # VMs with a namespace: NS_VMS and the paused one
for entry in "${FLEET[@]}"; do
  read -r name n role <<<"$entry"
  ROLE[$name]=$role
  ADDR[$name]=$NET_PREFIX.$n.2 HADDR[$name]=$NET_PREFIX.$n.1
  NSN[$name]=$NSP-$name DIR[$name]=$LAB/vms/$name
  case $role in
    web | degraded) SVCS[$name]="sshd nginx redis" ;;
    db) SVCS[$name]="sshd nginx redis postgres" ;;
    paused) NET_VMS+=("$name"); continue ;;
    *) continue ;;
  esac
  NET_VMS+=("$name") NS_VMS+=("$name")
  # What "up" means for each service: every one of these listens (ss "Local Address:Port").
  PORTS[$name:sshd]="${ADDR[$name]}:22"
  PORTS[$name:nginx]="${ADDR[$name]}:80 127.0.0.1:80 127.0.0.1:8080"
  PORTS[$name:redis]="${ADDR[$name]}:6379 127.0.0.1:6379"
  PORTS[$name:postgres]="127.0.0.1:5432"
  PIDFILE[$name:sshd]=${DIR[$name]}/sshd.pid
  PIDFILE[$name:nginx]=${DIR[$name]}/nginx.pid
  PIDFILE[$name:redis]=${DIR[$name]}/redis.pid
  PIDFILE[$name:postgres]=${DIR[$name]}/pg/postmaster.pid
done
unset entry name n role
# Also the jump lab's uplink (test/lab/jump.sh: $NSP-jhv1), which shares this /16.
OUR_LINKS="$NSP-($(IFS='|'; echo "${NET_VMS[*]}")|j[a-z0-9]+)"

die() { echo "fleet: $*" >&2; exit 1; }
log() { echo "fleet: $*" >&2; }

# ---------------------------------------------------------------- small utilities

need_root() {
  if ((EUID != 0)); then
    echo "the lab needs root for network namespaces; run as root" >&2
    exit 2
  fi
}

lock_lab() {
  [[ -d $LAB ]] || mkdir -p "$LAB"
  exec 9>"$LAB/.lock"
  flock -w 300 9 || die "another fleet.sh has held $LAB/.lock for 5 minutes"
  claim_prefix
}

# shellcheck source=claim.sh
source "$here/claim.sh"

# Reads a whole file into the variable named $1 (empty when missing), without forking.
slurp() {
  printf -v "$1" '%s' ''
  if [[ -r $2 ]]; then IFS= read -r -d '' "$1" <"$2" || true; fi
}

# Writes CONTENT to FILE only when it differs, so a warm `up` changes nothing. WROTE=1 when written.
write_if_changed() { # file content [mode]
  local old=""
  WROTE=0
  slurp old "$1"
  [[ -f $1 && $old == "$2" ]] && return 0
  printf '%s' "$2" >"$1.tmp.$$"
  chmod "${3:-644}" "$1.tmp.$$"
  mv -f "$1.tmp.$$" "$1"
  WROTE=1
}

# PID = the live process SERVICE's pid file names, or empty. Its name must match too: a pid file
# that outlived a reboot may name someone else's process now.
declare -A COMM=([sshd]=sshd [nginx]=nginx [redis]=redis-server [postgres]=postgres)
service_pid() { # vm service
  local comm=""
  PID=""
  if [[ -f ${PIDFILE[$1:$2]:-} ]]; then read -r PID 2>/dev/null <"${PIDFILE[$1:$2]}" || true; fi
  [[ $PID =~ ^[0-9]+$ ]] || { PID=""; return 0; }
  read -r comm 2>/dev/null <"/proc/$PID/comm" || true
  [[ $comm == "${COMM[$2]}" ]] || PID=""
}
# Alive = exists and is not a zombie (this machine's init reaps orphans only every few seconds).
pid_alive() {
  local stat=""
  [[ -n ${1:-} ]] && read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != [ZX] ]]
}
pid_stopped() { # state T = SIGSTOPped
  local stat=""
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [[ ${stat%% *} == T ]]
}

# Waits (bounded) until PID is gone; SIGKILL after ~5 s.
wait_gone() {
  local i
  for ((i = 0; i < 100; i++)); do pid_alive "$1" || return 0; sleep 0.05; done
  kill -KILL "$1" 2>/dev/null || true
  for ((i = 0; i < 40; i++)); do pid_alive "$1" || return 0; sleep 0.05; done
  return 1
}

# LISTENING[vm] = `ss -ltn` of the VM's namespace: " addr:port " is in it when something listens.
declare -A LISTENING
scan_listening() { # vm
  LISTENING[$1]=$(ss -N "${NSN[$1]}" -ltnH 2>/dev/null || true)
}
ports_up() { # vm service: all its ports listen (per LISTENING)
  local p
  for p in ${PORTS[$1:$2]}; do [[ ${LISTENING[$1]} == *" $p "* ]] || return 1; done
}
ports_any() { # vm service: one of its ports listens (per LISTENING)
  local p
  for p in ${PORTS[$1:$2]}; do [[ ${LISTENING[$1]} == *" $p "* ]] && return 0; done
  return 1
}
wait_ports() { # vm service
  local i
  for ((i = 0; i < 200; i++)); do
    scan_listening "$1"
    ports_up "$1" "$2" && return 0
    sleep 0.05
  done
  die "$1: $2 is not listening on ${PORTS[$1:$2]} after 10 s (see ${DIR[$1]}/*.log)"
}

is_mounted() { local m; slurp m /proc/self/mountinfo; [[ $m == *" $1 "* ]]; }

ns_exists() { [[ -e /run/netns/$1 ]]; }

# shellcheck disable=SC2086 # splitting on dots is the point
ip2int() { local IFS=.; set -- $1; INT=$((($1 << 24) + ($2 << 16) + ($3 << 8) + $4)); }
int2ip() { IP="$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"; }

# ---------------------------------------------------------------- keys and shared files

ensure_keys() {
  local vm pub known="" a b
  [[ -d $LAB/ssh/hostkeys ]] || { mkdir -p "$LAB/ssh/hostkeys"; chmod 700 "$LAB/ssh"; }
  [[ -f $LAB/ssh/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C clonebox-lab-client -f "$LAB/ssh/id_ed25519"
  slurp pub "$LAB/ssh/id_ed25519.pub"
  write_if_changed "$LAB/ssh/authorized_keys" "$pub"
  write_if_changed "$LAB/ssh/known_hosts.empty" ""
  for vm in "${NS_VMS[@]}"; do
    [[ -f $LAB/ssh/hostkeys/$vm ]] || ssh-keygen -q -t ed25519 -N '' -C "clonebox-lab-$vm" -f "$LAB/ssh/hostkeys/$vm"
    read -r a b _ <"$LAB/ssh/hostkeys/$vm.pub"
    known+="${ADDR[$vm]} $a $b"$'\n'
  done
  write_if_changed "$LAB/ssh/known_hosts" "$known"
}

ensure_www() {
  [[ -d $LAB/www ]] || { mkdir -p "$LAB/www"; chmod 755 "$LAB" "$LAB/www"; }
  write_if_changed "$LAB/www/index.html" $'clonebox fleet lab\n'
  # GET /big: 100 MB of zeros in a sparse file, taking no disk.
  [[ -f $LAB/www/big ]] || { truncate -s "$BIG_BYTES" "$LAB/www/big"; chmod 644 "$LAB/www/big"; }
}

hostkey_is_baseline() { # vm
  local cur base
  slurp cur "${DIR[$1]}/ssh_host_ed25519_key"
  slurp base "$LAB/ssh/hostkeys/$1"
  [[ -n $cur && $cur == "$base" ]]
}
install_baseline_hostkey() {
  install -m 600 "$LAB/ssh/hostkeys/$1" "${DIR[$1]}/ssh_host_ed25519_key"
  install -m 644 "$LAB/ssh/hostkeys/$1.pub" "${DIR[$1]}/ssh_host_ed25519_key.pub"
}

# ---------------------------------------------------------------- per-VM service configs

write_sshd_config() {
  local vm=$1 d=${DIR[$1]} conf
  IFS= read -r -d '' conf <<EOF || true
# Generated by test/lab/fleet.sh for $vm
ListenAddress ${ADDR[$vm]}:22
HostKey $d/ssh_host_ed25519_key
PidFile $d/sshd.pid
AuthorizedKeysFile $LAB/ssh/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
StrictModes no
MaxSessions 10
MaxStartups 100:30:200
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
PrintLastLog no
Subsystem sftp internal-sftp
EOF
  # Fault `slowauth N`: the keys come from a command that takes N seconds to answer (then prints the lab's keys).
  if [[ -f $d/slowauth ]]; then
    conf=${conf/"AuthorizedKeysFile $LAB/ssh/authorized_keys"/"AuthorizedKeysFile none"}
    conf+="AuthorizedKeysCommand $d/slowauth.sh
AuthorizedKeysCommandUser root
"
    write_if_changed "$d/slowauth.sh" "#!/bin/sh
read -r s <'$d/slowauth' 2>/dev/null && sleep \"\$s\"
exec cat '$LAB/ssh/authorized_keys'
" 755
  fi
  write_if_changed "$d/sshd_config" "$conf"
}

write_nginx_config() {
  local vm=$1 d=${DIR[$1]} a=${ADDR[$1]} status body conf
  if [[ ${ROLE[$vm]} == degraded ]]; then
    status=503 body='{"status":"degraded"}'
  else
    status=200 body='{"status":"ok","db":{"status":"ok"}}'
  fi
  [[ -d $d/nginx-tmp ]] || mkdir -p "$d/nginx-tmp"
  IFS= read -r -d '' conf <<EOF || true
# Generated by test/lab/fleet.sh for $vm
worker_processes 1;
pid $d/nginx.pid;
error_log $d/nginx.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $d/nginx-tmp/body;
  proxy_temp_path $d/nginx-tmp/proxy;
  fastcgi_temp_path $d/nginx-tmp/fastcgi;
  uwsgi_temp_path $d/nginx-tmp/uwsgi;
  scgi_temp_path $d/nginx-tmp/scgi;
  default_type text/plain;
  sendfile on;
  server {
    listen $a:80;
    listen 127.0.0.1:80;
    listen 127.0.0.1:8080;
    root $LAB/www;
    location = /health { default_type application/json; return $status '$body\n'; }
    location = / { return 200 'clonebox lab $vm\n'; }
    location = /big { default_type application/octet-stream; }
    location / { return 404 'not found\n'; }
  }
}
EOF
  write_if_changed "$d/nginx.conf" "$conf"
}

write_redis_config() {
  local vm=$1 d=${DIR[$1]} conf
  [[ -d $d/redis ]] || mkdir -p "$d/redis"
  IFS= read -r -d '' conf <<EOF || true
# Generated by test/lab/fleet.sh for $vm
bind ${ADDR[$vm]} 127.0.0.1
port 6379
protected-mode no
daemonize yes
supervised no
pidfile $d/redis.pid
logfile $d/redis.log
dir $d/redis
save ""
appendonly no
databases 4
EOF
  write_if_changed "$d/redis.conf" "$conf"
}

# initdb is the slow part (~1 s): done once into a template under cache/, copied per VM.
ensure_pg_template() {
  local t=$LAB/cache/pg-template
  [[ -f $t/PG_VERSION ]] && return 0
  [[ -n $PG_BIN && -x $PG_BIN/initdb ]] || die "PostgreSQL not found in /usr/lib/postgresql/*/bin; run scripts/install-deps.sh"
  mkdir -p "$LAB/cache"
  rm -rf "$t.tmp"
  mkdir -p "$t.tmp"
  chown postgres: "$t.tmp"
  chmod 700 "$t.tmp"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$t.tmp" -A trust -U postgres --no-sync -E UTF8 --locale=C \
    9>&- >"$LAB/cache/initdb.log" 2>&1 || die "initdb failed (see $LAB/cache/initdb.log)"
  echo "include_if_exists 'clonebox-lab.conf'" >>"$t.tmp/postgresql.conf"
  mv "$t.tmp" "$t"
}

write_pg_config() {
  local vm=$1 d=${DIR[$1]} conf
  if [[ ! -f $d/pg/PG_VERSION ]]; then
    ensure_pg_template
    rm -rf "$d/pg" "$d/pg.tmp"
    cp -a "$LAB/cache/pg-template" "$d/pg.tmp"
    mv "$d/pg.tmp" "$d/pg"
  fi
  [[ -d $d/pg-run ]] || { mkdir -p "$d/pg-run"; chown postgres: "$d/pg-run"; }
  IFS= read -r -d '' conf <<EOF || true
# Generated by test/lab/fleet.sh for $vm: the namespace's loopback only, so only an SSH tunnel reaches it.
listen_addresses = '127.0.0.1'
port = 5432
unix_socket_directories = '$d/pg-run'
max_connections = 50
shared_buffers = 16MB
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
EOF
  write_if_changed "$d/pg/clonebox-lab.conf" "$conf"
}

# ---------------------------------------------------------------- services

# Runs a daemon in VM's namespace in its own session, without the lock fd and with no stdio tied to
# our caller (a test runner reading our pipes would otherwise wait for the daemon to exit).
ns_daemon() { # vm command...
  local vm=$1
  shift
  setsid ip netns exec "${NSN[$vm]}" "$@" 9>&- </dev/null >>"${DIR[$vm]}/start.log" 2>&1
}

start_service() { # vm service
  local vm=$1 d=${DIR[$1]}
  case $2 in
    sshd)
      [[ -d /run/sshd ]] || mkdir -m 755 /run/sshd # sshd's privilege separation directory
      [[ -d $d/root ]] || mkdir -m 700 "$d/root"
      # The guest's root gets its own empty home: over /root, in the mount namespace that
      # `ip netns exec` makes for sshd only (the host's /root is untouched). Like a real guest, and
      # the host root's shell rc files (slow ones, too) are not run for every guest command.
      # shellcheck disable=SC2016 # $1.. are the inner sh's arguments
      # Fault `nohosts on`: the guest has neither /etc/hosts nor a resolver (a minimal guest), as sshd sees it.
      ns_daemon "$vm" /bin/sh -c 'mount --bind "$1" /root && if [ -e "$4" ]; then mount --bind /dev/null /etc/hosts && mount --bind /dev/null /etc/resolv.conf; fi && exec /usr/sbin/sshd -f "$2" -E "$3"' \
        guest-sshd "$d/root" "$d/sshd_config" "$d/sshd.log" "$d/nohosts" ;;
    nginx) ns_daemon "$vm" /usr/sbin/nginx -p "$d" -c "$d/nginx.conf" -e "$d/nginx.log" ;;
    redis) ns_daemon "$vm" /usr/bin/redis-server "$d/redis.conf" ;;
    postgres) ns_daemon "$vm" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$d/pg" -l "$d/pg-run/postgres.log" -W start ;;
  esac
}

# Pids listening on SERVICE's ports in VM's namespace (orphans of a killed run have no pid file).
listener_pids() { # vm service
  local line p rest pids=" "
  while IFS= read -r line; do
    for p in ${PORTS[$1:$2]}; do
      [[ $line == *" $p "* ]] || continue
      rest=$line
      while [[ $rest =~ pid=([0-9]+) ]]; do
        [[ $pids == *" ${BASH_REMATCH[1]} "* ]] || pids+="${BASH_REMATCH[1]} "
        rest=${rest#*pid="${BASH_REMATCH[1]}"}
      done
    done
  done <<<"$(ss -N "${NSN[$1]}" -ltnpH 2>/dev/null || true)"
  echo "${pids# }"
}

# Stops SERVICE by its pid file (gracefully, bounded); then kills by pid whatever still listens on
# its ports in the VM's namespace. For sshd this is the listener only: open sessions live on, as
# when a real sshd service is stopped.
stop_service() { # vm service
  local vm=$1 svc=$2 p
  service_pid "$vm" "$svc"
  if pid_alive "$PID"; then
    kill -CONT "$PID" 2>/dev/null || true
    if [[ $svc == postgres ]]; then kill -INT "$PID" 2>/dev/null || true; else kill -TERM "$PID" 2>/dev/null || true; fi
    wait_gone "$PID" || true
  fi
  if ports_any "$vm" "$svc"; then
    scan_listening "$vm"
    if ports_any "$vm" "$svc"; then
      for p in $(listener_pids "$vm" "$svc"); do
        kill -CONT "$p" 2>/dev/null || true
        kill -TERM "$p" 2>/dev/null || true
        wait_gone "$p" || true
      done
      scan_listening "$vm"
    fi
  fi
  [[ $svc == postgres ]] || rm -f "${PIDFILE[$vm:$svc]}"
}

# The processes a freeze stops: the one that accepts (for nginx, its workers too).
service_pids() { # vm service
  service_pid "$1" "$2"
  pid_alive "$PID" || return 0
  echo "$PID"
  if [[ $2 == nginx ]]; then pgrep -P "$PID" || true; fi
}

# Up = the pid file names a live, running (not stopped) process and every port listens.
service_ok() { # vm service (uses LISTENING)
  service_pid "$1" "$2"
  pid_alive "$PID" && ! pid_stopped "$PID" && ports_up "$1" "$2"
}

# Makes SERVICE up; appends "vm:service" to STARTED when it had to start it (wait_ports later).
ensure_service() { # vm service (uses LISTENING)
  local vm=$1 svc=$2 p
  service_ok "$vm" "$svc" && return 0
  service_pid "$vm" "$svc"
  if pid_alive "$PID" && pid_stopped "$PID"; then
    for p in $(service_pids "$vm" "$svc"); do kill -CONT "$p" 2>/dev/null || true; done
    if service_ok "$vm" "$svc"; then log "$vm: thawed $svc"; return 0; fi
  fi
  log "$vm: starting $svc"
  stop_service "$vm" "$svc"
  start_service "$vm" "$svc"
  STARTED+=("$vm:$svc")
}

wait_started() {
  local s
  for s in "${STARTED[@]}"; do wait_ports "${s%%:*}" "${s#*:}"; done
}

# ---------------------------------------------------------------- network

# Refuses a host that already uses part of 10.213.0.0/16: the lab's routes must be the only ones.
check_no_overlap() {
  local bad
  # Routes inside the range, or containing it (bar the default route), that are not the lab's.
  bad=$({
    ip -4 route show table all root "$NET_CIDR"
    ip -4 route show table all match "$NET_CIDR"
  } 2>/dev/null | grep -v -E -e '^default' -e " dev $OUR_LINKS( |\$)" -e "^unreachable $NET_CIDR" -e '^$' || true)
  [[ -z $bad ]] || die "the host already routes part of $NET_CIDR, which the lab needs for itself: ${bad%%$'\n'*}"
  if ip -4 -o addr show | grep -v -E "^[0-9]+: $OUR_LINKS " | grep -q " inet $NET_PREFIX\\."; then
    die "an interface other than the lab's already has an address in $NET_CIDR"
  fi
}

# Checks VM's network; brings links up that are merely down (a `link down` fault).
# Returns 1 when something is missing or wrong: the caller then rebuilds the VM.
ensure_net() { # vm
  local vm=$1 ns=${NSN[$1]} host inside
  ns_exists "$ns" || return 1
  host=$(ip -br -4 addr show dev "$NSP-$vm" 2>/dev/null) || return 1
  [[ $host == *" ${HADDR[$vm]}/30"* ]] || return 1
  [[ $host == *" UP "* ]] || ip link set "$NSP-$vm" up
  inside=$(ip -n "$ns" -br -4 addr 2>/dev/null) || return 1
  [[ $inside == *"lo "*"127.0.0.1/8"* && $inside == *"eth0@"*" ${ADDR[$vm]}/30"* ]] || return 1
  if [[ ${ROLE[$vm]} == paused ]]; then
    [[ $inside != *"eth0@"*" UP "* ]] || ip -n "$ns" link set eth0 down
  elif [[ $inside != *"eth0@"*" UP "* ]]; then
    log "$vm: link was down, setting it up"
    ip -n "$ns" link set eth0 up
  fi
}

# The VM's side of the veth is eth0 in the namespace; no default route there, on purpose.
create_net() {
  local vm=$1 ns=${NSN[$1]}
  # `down` removes what this file lists (and the fleet's own names), never other $NSP-* namespaces.
  echo "$vm" >>"$LAB/created"
  ip -batch - <<EOF
netns add $ns
link add $NSP-$vm type veth peer name eth0 netns $ns
addr add ${HADDR[$vm]}/30 dev $NSP-$vm
link set $NSP-$vm up
EOF
  ip -n "$ns" -batch - <<EOF
addr add ${ADDR[$vm]}/30 dev eth0
link set eth0 $([[ ${ROLE[$vm]} == paused ]] && echo down || echo up)
link set lo up
EOF
}

# Kills every process in VM's namespace (pid files first and gracefully, bounded), removes the
# namespace, the veth and the data tmpfs.
destroy_vm() { # vm (also a leftover $NSP- namespace of a VM no longer in FLEET)
  local vm=$1 ns=$NSP-$1 d=$LAB/vms/$1 svc i p pids=""
  # By pid file even without the namespace: `ip netns del` alone leaves its processes running.
  for svc in ${SVCS[$vm]:-}; do
    service_pid "$vm" "$svc"
    if pid_alive "$PID"; then kill -CONT "$PID" 2>/dev/null || true; kill -TERM "$PID" 2>/dev/null || true; pids+=" $PID"; fi
  done
  for p in $pids; do wait_gone "$p" || true; done
  if ns_exists "$ns"; then
    for ((i = 0; i < 60; i++)); do
      [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && break
      if [[ $i -eq 20 ]]; then
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -CONT "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; done
      elif [[ $i -eq 40 ]]; then
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
      fi
      sleep 0.05
    done
    ip netns del "$ns" 2>/dev/null || true
  fi
  ip link del "$NSP-$vm" 2>/dev/null || true
  if is_mounted "$d/data"; then umount "$d/data"; fi
}

# ---------------------------------------------------------------- disk

# Fills the VM's data tmpfs with one file so that df reports PERCENT% used (df rounds up: aim a
# page below PERCENT% of the size).
data_fill_to() { # vm percent
  local vm=$1 pct=$2 d=${DIR[$1]}/data total used fill
  is_mounted "$d" || die "$vm: $d is not mounted; run fleet.sh up"
  rm -f "$d/fill"
  if ((pct > 0)); then
    read -r total used < <(df -k --output=size,used "$d" | tail -n 1)
    fill=$(((total * pct / 100 - used) / 4 * 4))
    ((fill <= 0)) || fallocate -l "$((fill * 1024))" "$d/fill"
  fi
  echo "$vm: $d is $(df -k --output=pcent "$d" | tail -n 1 | tr -d ' ') used"
}

# ---------------------------------------------------------------- libvirt, config, lab.json

generate_libvirt() {
  [[ -d $LAB/libvirt ]] || mkdir -p "$LAB/libvirt"
  local entry name n role id=0 nets="" doms="" mac uuid state xml
  for entry in "${FLEET[@]}"; do
    read -r name n role <<<"$entry"
    ip2int "${ADDR[$name]}"
    # The network's ip is chosen so that the test driver reports exactly ADDR for this domain.
    if [[ $role != shutoff ]]; then id=$((id + 1)); int2ip $((INT - (20 * (id - 1) + 1))); else int2ip $((INT - 1)); fi
    nets+="  <network><name>$NSP-$name</name><ip address='$IP' prefix='30'/></network>"$'\n'
    printf -v mac '52:54:00:cb:%02x:01' "$n"
    printf -v uuid 'cb0c1a60-0000-4000-8000-%012d' "$n"
    case $role in paused) state=3 ;; shutoff) state=5 ;; *) state="" ;; esac
    doms+="  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>$name</name><uuid>$uuid</uuid>
    <memory unit='MiB'>512</memory><vcpu>1</vcpu><os><type>hvm</type></os>
    <devices><interface type='network'><mac address='$mac'/><source network='$NSP-$name'/></interface></devices>
${state:+    <test:runstate>$state</test:runstate>
}  </domain>
"
  done
  xml="<!-- Generated by test/lab/fleet.sh. The libvirt test driver reports, for interface i of the
     active domain with id N, the address (network ip) + 20*(N-1) + i + 1; ids go to running and
     paused domains in file order. Each VM has its own network so its address is chosen exactly. -->
<node>
$nets$doms</node>
"
  write_if_changed "$LAB/libvirt/node.xml" "$xml"
  [[ -f $LAB/libvirt/.verified && $WROTE -eq 0 ]] && return 0
  verify_libvirt
  : >"$LAB/libvirt/.verified"
}

# The address formula is an observation about the test driver, not an API: check it when it changes.
verify_libvirt() {
  local entry name role want cmds out word cur="" fail=""
  declare -A got=()
  command -v virsh >/dev/null || die "virsh not found; run scripts/install-deps.sh"
  cmds="list --all"
  for entry in "${FLEET[@]}"; do
    read -r name _ role <<<"$entry"
    [[ $role == shutoff ]] || cmds+="; echo @$name; domifaddr $name --full"
  done
  out=$(virsh -c "$URI" -q "$cmds" 2>&1) || die "virsh cannot read $URI: $out"
  # virsh's echo ends no line: walk words; "@name" starts a domain, an a.b.c.d/p word is its address.
  for word in $out; do
    if [[ $word == @* ]]; then cur=${word#@}
    elif [[ -n $cur && $word =~ ^[0-9.]+/[0-9]+$ ]]; then got[$cur]+="$word "
    fi
  done
  for entry in "${FLEET[@]}"; do
    read -r name _ role <<<"$entry"
    case $role in paused) want=paused ;; shutoff) want="shut off" ;; *) want=running ;; esac
    [[ $'\n'$out$'\n' =~ $'\n'\ *[-0-9]+\ +$name\ +$want\ *$'\n' ]] || fail+=" $name is not $want;"
    [[ $role == shutoff || ${got[$name]:-} == "${ADDR[$name]}/30 " ]] ||
      fail+=" $name reports '${got[$name]:-}' instead of ${ADDR[$name]}/30;"
  done
  if [[ -n $fail ]]; then
    rm -f "$LAB/libvirt/node.xml"
    die "the libvirt test driver does not show the planned fleet (the address trick may no longer hold):$fail"
  fi
}

generate_config() {
  local vm yaml
  IFS= read -r -d '' yaml <<EOF || true
# Generated by test/lab/fleet.sh: a working config for the fleet lab (rewritten by every \`up\`).
# web-3 answers /health with 503 on purpose; off-1 is shut off; paused-1 is paused.
# localhost in a check means the guest: those checks go through the VM's SSH connection.
libvirt:
  uri: "$URI"
ssh:
  user: root
  identity_file: "$LAB/ssh/id_ed25519"
  known_hosts: "$LAB/ssh/known_hosts"
  host_key_policy: strict
  connect_timeout: 5s
health_checks:
  - name: api-health
    type: http
    url: http://localhost:8080/health
    critical: true
    expected_json:
      status: ok
  - name: web-root
    type: http
    url: http://localhost:80/
    expected_body: clonebox lab
  - name: redis
    type: tcp
    host: localhost
    port: 6379
  - name: redis-ping
    type: command
    exec: redis-cli -h 127.0.0.1 ping
    expected_output: PONG
  - name: disk-root
    type: disk
    path: /
  - name: memory
    type: memory
vms:
EOF
  for vm in "${NS_VMS[@]}"; do
    yaml+="  $vm:
    health_checks:
      - name: data
        type: disk
        path: \"${DIR[$vm]}/data\"
"
    [[ ${ROLE[$vm]} == db ]] && yaml+="      - name: postgres
        type: tcp
        host: localhost
        port: 5432
        critical: true
      - name: pg-ready
        type: command
        exec: pg_isready -h 127.0.0.1 -p 5432
        exit_code: 0
"
  done
  write_if_changed "$LAB/clonebox.yaml" "$yaml"
}

# What test/lab/lab.ts reads. Paths have no quotes or backslashes (LAB has no spaces; see top).
generate_lab_json() {
  local entry name n role id=0 vms="" doms="" svcs state sep=""
  for name in "${NS_VMS[@]}"; do
    svcs=\"${SVCS[$name]// /\", \"}\"
    vms+="$sep    \"$name\": { \"name\": \"$name\", \"namespace\": \"${NSN[$name]}\", \"address\": \"${ADDR[$name]}\", \"hostAddress\": \"${HADDR[$name]}\", \"role\": \"${ROLE[$name]}\", \"services\": [$svcs], \"dataDir\": \"${DIR[$name]}/data\", \"hostKeyFile\": \"$LAB/ssh/hostkeys/$name.pub\" }"
    sep=$',\n'
  done
  sep=""
  for entry in "${FLEET[@]}"; do
    read -r name n role <<<"$entry"
    case $role in
      shutoff) doms+="$sep    \"$name\": { \"name\": \"$name\", \"state\": \"shut off\", \"id\": null, \"address\": null, \"namespace\": null }" ;;
      *)
        id=$((id + 1))
        [[ $role == paused ]] && state=paused || state=running
        doms+="$sep    \"$name\": { \"name\": \"$name\", \"state\": \"$state\", \"id\": $id, \"address\": \"${ADDR[$name]}\", \"namespace\": \"${NSN[$name]}\" }" ;;
    esac
    sep=$',\n'
  done
  write_if_changed "$LAB/lab.json" "{
  \"dir\": \"$LAB\",
  \"uri\": \"$URI\",
  \"configPath\": \"$LAB/clonebox.yaml\",
  \"identityFile\": \"$LAB/ssh/id_ed25519\",
  \"knownHostsFile\": \"$LAB/ssh/known_hosts\",
  \"emptyKnownHostsFile\": \"$LAB/ssh/known_hosts.empty\",
  \"vms\": {
$vms
  },
  \"domains\": {
$doms
  }
}
"
}

# ---------------------------------------------------------------- commands

# Brings one VM to its baseline; prints the services it had to start (one "vm:service" a line).
up_vm() { # vm
  local vm=$1 d=${DIR[$1]} svc restart=" "
  STARTED=()
  [[ -d $d ]] || mkdir -p "$d"
  if ! ensure_net "$vm"; then
    # Half-made or broken (a killed run): rebuild the VM whole rather than patch it.
    if ns_exists "${NSN[$vm]}"; then log "$vm: network incomplete, rebuilding"; fi
    destroy_vm "$vm"
    create_net "$vm"
  fi
  [[ ${ROLE[$vm]} != paused ]] || return 0
  [[ -d $d/data ]] || mkdir -p "$d/data"
  if ! is_mounted "$d/data"; then
    mount -t tmpfs -o "size=$DATA_SIZE,mode=0755" "$NSP-data-$vm" "$d/data"
    restart+="sshd " # sshd's mount namespace (from ip netns exec) is a copy: it must see the new mount
  fi
  [[ ! -e $d/data/fill ]] || rm -f "$d/data/fill"
  hostkey_is_baseline "$vm" || { install_baseline_hostkey "$vm"; restart+="sshd "; }
  # A changed config (a newer fleet.sh) takes a restart. Faults that live in files go back to the baseline.
  rm -f "$d/slowauth"
  if [[ -e $d/nohosts ]]; then rm -f "$d/nohosts"; restart+="sshd "; fi
  write_sshd_config "$vm"
  ((WROTE == 0)) || restart+="sshd "
  write_nginx_config "$vm"
  ((WROTE == 0)) || restart+="nginx "
  write_redis_config "$vm"
  ((WROTE == 0)) || restart+="redis "
  if [[ ${ROLE[$vm]} == db ]]; then
    write_pg_config "$vm"
    ((WROTE == 0)) || restart+="postgres "
  fi
  scan_listening "$vm"
  for svc in ${SVCS[$vm]}; do
    if [[ $restart == *" $svc "* ]]; then stop_service "$vm" "$svc"; fi
    ensure_service "$vm" "$svc"
  done
  wait_started
  if ((${#STARTED[@]})); then printf '%s\n' "${STARTED[@]}"; fi
}

cmd_up() {
  need_root
  lock_lab
  local t0=${EPOCHREALTIME/[.,]/} vm ms started=0 failed="" line
  declare -A jobs=()
  # Safety net: with a VM's link down its address must fail here, not follow the default route.
  # Check the range is free before adding routes to it (only then: it costs ~0.2 s of forks).
  if [[ $(ip -4 route show table main type unreachable) != *"$NET_CIDR"* ]]; then
    check_no_overlap
    ip route add unreachable "$NET_CIDR"
  else
    for vm in "${NET_VMS[@]}"; do
      if ! ns_exists "${NSN[$vm]}"; then check_no_overlap; break; fi
    done
  fi
  [[ -d $LAB/vms ]] || mkdir -p "$LAB/vms"
  ensure_keys
  ensure_www
  if [[ " ${SVCS[*]} " == *" postgres "* ]]; then ensure_pg_template; fi
  # VMs are independent: bring them up in parallel.
  for vm in "${NET_VMS[@]}"; do
    up_vm "$vm" >"$LAB/vms/.up-$vm" &
    jobs[$vm]=$!
  done
  for vm in "${NET_VMS[@]}"; do
    wait "${jobs[$vm]}" || failed+=" $vm"
    while read -r line; do ((++started)); done <"$LAB/vms/.up-$vm"
    rm -f "$LAB/vms/.up-$vm"
  done
  [[ -z $failed ]] || die "could not bring up:$failed (see above; \`fleet.sh down\` then \`up\` rebuilds from scratch)"
  generate_libvirt
  generate_config
  generate_lab_json
  ms=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
  if ((started == 0)); then
    log "lab is up; nothing to do (${ms} ms): $LAB"
  else
    log "lab is up; started $started services in ${ms} ms: $LAB"
  fi
}

cmd_down() {
  need_root
  lock_lab
  local vm m
  # The fleet's VMs, and any this lab created under an older FLEET (other $NSP-* are not ours:
  # test/lab/vm uses cbx-vmlab).
  local -A seen=()
  for vm in "${NET_VMS[@]}"; do seen[$vm]=1; done
  if [[ -f $LAB/created ]]; then
    while read -r vm; do [[ $vm =~ ^[a-z0-9-]+$ ]] && seen[$vm]=1; done <"$LAB/created"
  fi
  for vm in "${!seen[@]}"; do destroy_vm "$vm"; done
  rm -f "$LAB/created"
  ip route del unreachable "$NET_CIDR" 2>/dev/null || true
  for m in "$LAB"/vms/*/data; do
    if is_mounted "$m"; then umount "$m"; fi
  done
  rm -rf "$LAB/vms" "$LAB/libvirt" "$LAB/www" "$LAB/clonebox.yaml" "$LAB/lab.json"
  if [[ ${1:-} == --purge ]]; then
    rm -rf "$LAB/ssh" "$LAB/cache" "$LAB/.lock"
    rmdir "$LAB" 2>/dev/null || true
    log "lab is down; keys and caches removed"
  else
    log "lab is down (kept $LAB/ssh and $LAB/cache)"
  fi
}

cmd_status() {
  need_root
  local entry name role vm svc state line link disk rc=0
  for entry in "${FLEET[@]}"; do
    read -r name _ role <<<"$entry"
    case $role in
      paused)
        if ! ns_exists "${NSN[$name]}"; then
          printf '%-9s %-12s %-11s down: no namespace\n' "$name" "${NSN[$name]}" "${ADDR[$name]}"
          rc=1
        elif [[ $(ip -n "${NSN[$name]}" -br link show dev eth0 2>/dev/null) == *" UP "* ]]; then
          printf '%-9s %-12s %-11s link:up (should be down: paused)\n' "$name" "${NSN[$name]}" "${ADDR[$name]}"
          rc=1
        else
          printf '%-9s %-12s %-11s paused: link down, nothing answers\n' "$name" "${NSN[$name]}" "${ADDR[$name]}"
        fi
        continue ;;
      shutoff) printf '%-9s %-12s %-11s shut off: libvirt only\n' "$name" - - ; continue ;;
    esac
    vm=$name
    if ! ns_exists "${NSN[$vm]}"; then
      printf '%-9s %-12s %-11s down: no namespace\n' "$vm" "${NSN[$vm]}" "${ADDR[$vm]}"
      rc=1
      continue
    fi
    scan_listening "$vm"
    line=""
    for svc in ${SVCS[$vm]}; do
      service_pid "$vm" "$svc"
      if pid_alive "$PID" && pid_stopped "$PID"; then state=frozen rc=1
      elif service_ok "$vm" "$svc"; then state=up
      else state=down rc=1
      fi
      line+=" $svc:$state"
    done
    link=$(ip -n "${NSN[$vm]}" -br link show dev eth0 2>/dev/null)
    if [[ $link == *" UP "* ]]; then link=up; else link=down rc=1; fi
    disk=$(df -k --output=pcent "${DIR[$vm]}/data" 2>/dev/null | tail -n 1 | tr -d ' ') || disk='?'
    hostkey_is_baseline "$vm" || line+=" hostkey:rotated"
    printf '%-9s %-12s %-11s link:%s%s data:%s\n' "$vm" "${NSN[$vm]}" "${ADDR[$vm]}" "$link" "$line" "$disk"
  done
  return $rc
}

usage_fault() {
  die "usage: fleet.sh fault VM stop|start|freeze|thaw SERVICE | drop ssh | freeze-ssh | thaw-ssh | blackhole on|off | slowauth SECONDS|off | nohosts on|off | link down|up | disk PERCENT | hostkey rotate|restore | clear"
}

# Every sshd process in VM's namespace: the listener and each connection's own.
ssh_pids() { # vm
  local p comm
  for p in $(ip netns pids "${NSN[$1]}"); do
    comm=""
    read -r comm <"/proc/$p/comm" 2>/dev/null || true
    [[ $comm != sshd ]] || echo "$p"
  done
}

blackhole() { # vm on|off: the VM drops every packet that comes in on its NIC (no answer, no reset)
  local ns=${NSN[$1]}
  while ip netns exec "$ns" iptables -w -D INPUT -i eth0 -j DROP 2>/dev/null; do :; done
  [[ $2 == off ]] || ip netns exec "$ns" iptables -w -I INPUT -i eth0 -j DROP
}

# A link that went down leaves FAILED neighbour entries that delay the next packets by seconds: flush both ends.
flush_neigh() { # vm
  ip neigh flush dev "$NSP-$1" 2>/dev/null || true
  ip -n "${NSN[$1]}" neigh flush dev eth0 2>/dev/null || true
}

restart_sshd() { # vm: a new listener (open connections live on in their own processes)
  stop_service "$1" sshd
  start_service "$1" sshd
  wait_ports "$1" sshd
}

cmd_fault() {
  need_root
  (($# >= 2)) || usage_fault
  local vm=$1 what=$2 svc d pids
  shift 2
  [[ -n ${SVCS[$vm]:-} ]] || die "no VM '$vm' with a namespace; they are: ${NS_VMS[*]}"
  ns_exists "${NSN[$vm]}" || die "$vm is not up; run fleet.sh up"
  lock_lab
  d=${DIR[$vm]}
  scan_listening "$vm"
  case $what in
    stop | start | freeze | thaw)
      svc=${1:-}
      [[ " ${SVCS[$vm]} " == *" $svc "* ]] || die "$vm runs no service '$svc'; it runs: ${SVCS[$vm]}"
      case $what in
        stop)
          stop_service "$vm" "$svc"
          echo "$vm: $svc stopped" ;;
        start)
          STARTED=()
          ensure_service "$vm" "$svc" 2>/dev/null
          wait_started
          echo "$vm: $svc running" ;;
        freeze)
          mapfile -t pids < <(service_pids "$vm" "$svc")
          ((${#pids[@]})) || die "$vm: $svc is not running"
          kill -STOP "${pids[@]}"
          echo "$vm: $svc frozen (its socket accepts connections, nothing answers)" ;;
        thaw)
          mapfile -t pids < <(service_pids "$vm" "$svc")
          ((${#pids[@]} == 0)) || kill -CONT "${pids[@]}"
          echo "$vm: $svc thawed" ;;
      esac ;;
    drop)
      # As when the guest reboots: sshd goes, and with it every open SSH connection (the per-connection
      # processes live on after the listener is stopped, so they are killed too). `start sshd` brings it back.
      [[ ${1:-} == ssh ]] || usage_fault
      stop_service "$vm" sshd
      for p in $(ip netns pids "${NSN[$vm]}"); do
        [[ $(cat "/proc/$p/comm" 2>/dev/null) == sshd ]] && kill -KILL "$p" 2>/dev/null
      done
      echo "$vm: sshd stopped and every SSH connection to it dropped" ;;
    link)
      case ${1:-} in
        down) ip -n "${NSN[$vm]}" link set eth0 down; echo "$vm: link down" ;;
        up) ip -n "${NSN[$vm]}" link set eth0 up; flush_neigh "$vm"; echo "$vm: link up" ;;
        *) usage_fault ;;
      esac ;;
    freeze-ssh)
      # sshd frozen mid-session: the listener and every connection's process stop (SIGSTOP); TCP stays up.
      mapfile -t pids < <(ssh_pids "$vm")
      ((${#pids[@]})) || die "$vm: sshd is not running"
      kill -STOP "${pids[@]}"
      echo "$vm: every sshd process frozen (${#pids[@]})" ;;
    thaw-ssh)
      mapfile -t pids < <(ssh_pids "$vm")
      ((${#pids[@]} == 0)) || kill -CONT "${pids[@]}"
      echo "$vm: sshd thawed" ;;
    blackhole)
      case ${1:-} in
        on | off) blackhole "$vm" "$1"; flush_neigh "$vm"; echo "$vm: blackhole $1" ;;
        *) usage_fault ;;
      esac ;;
    slowauth)
      case ${1:-} in
        off) rm -f "$d/slowauth" ;;
        *) [[ ${1:-} =~ ^[0-9]+$ ]] || usage_fault; printf '%s\n' "$1" >"$d/slowauth" ;;
      esac
      write_sshd_config "$vm"
      ((WROTE == 0)) || restart_sshd "$vm"
      echo "$vm: slowauth ${1}" ;;
    nohosts)
      case ${1:-} in
        on) [[ -e $d/nohosts ]] || { : >"$d/nohosts"; restart_sshd "$vm"; } ;;
        off) [[ ! -e $d/nohosts ]] || { rm -f "$d/nohosts"; restart_sshd "$vm"; } ;;
        *) usage_fault ;;
      esac
      echo "$vm: nohosts $1" ;;
    disk)
      if ! [[ ${1:-} =~ ^[0-9]+$ ]] || (($1 > 100)); then usage_fault; fi
      data_fill_to "$vm" "$1" ;;
    hostkey)
      case ${1:-} in
        rotate)
          rm -f "$d/ssh_host_ed25519_key" "$d/ssh_host_ed25519_key.pub"
          ssh-keygen -q -t ed25519 -N '' -C "clonebox-lab-$vm-rotated" -f "$d/ssh_host_ed25519_key"
          echo "$vm: sshd has a new host key; known_hosts still lists the old one" ;;
        restore)
          install_baseline_hostkey "$vm"
          echo "$vm: sshd has its known host key again" ;;
        *) usage_fault ;;
      esac
      stop_service "$vm" sshd
      start_service "$vm" sshd
      wait_ports "$vm" sshd ;;
    clear)
      ip -n "${NSN[$vm]}" link set eth0 up
      blackhole "$vm" off
      flush_neigh "$vm"
      mapfile -t pids < <(ssh_pids "$vm")
      ((${#pids[@]} == 0)) || kill -CONT "${pids[@]}"
      if [[ -e $d/slowauth || -e $d/nohosts ]]; then
        rm -f "$d/slowauth" "$d/nohosts"
        write_sshd_config "$vm"
        stop_service "$vm" sshd
      fi
      rm -f "$d/data/fill"
      if ! hostkey_is_baseline "$vm"; then install_baseline_hostkey "$vm"; stop_service "$vm" sshd; fi
      STARTED=()
      scan_listening "$vm"
      for svc in ${SVCS[$vm]}; do ensure_service "$vm" "$svc" 2>/dev/null; done
      wait_started
      echo "$vm: no faults" ;;
    *) usage_fault ;;
  esac
}

case ${1:-} in
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  fault) shift; cmd_fault "$@" ;;
  *)
    sed -n '6,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 64 ;;
esac
