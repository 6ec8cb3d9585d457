#!/usr/bin/env bash
# The jump-host lab: "hypervisors" that are network namespaces with their own sshd, and guests behind them that
# only their hypervisor can reach (no route from the host), as guests on a hypervisor's NAT network are.
#
#   host ──(X.240/30)── hv1 ──(X.241/30)── hv2 ──(X.243/30)── inner-2
#                        ├──(X.242/30)── inner-1
#                        └──(X.244/30)── inner-3
#
#   jump.sh up                       build it, or bring it back to its baseline (idempotent, bounded)
#   jump.sh down                     remove namespaces, processes and files (keeps the keys)
#   jump.sh status                   one line per node; exit 0 when every sshd listens
#   jump.sh fault NODE stop|start    NODE's sshd listener (sessions live on)
#   jump.sh fault NODE link down|up  NODE's uplink (eth0): connections to it time out
#   jump.sh fault NODE clear         undo both
#
# Same CLONEBOX_LAB_NS / CLONEBOX_LAB_NET / CLONEBOX_LAB_DIR as fleet.sh, and its lock: the namespaces are
# $NSP-j<node>, the addresses $NET.240.0/22-ish inside the lab's /16 (no default route anywhere, IP forwarding off
# in every namespace, and the host keeps `unreachable $NET.0.0/16` so nothing for these leaves the machine).
# The guests are libvirt test-driver domains in $LAB/jump/node.xml; $LAB/jump/jump.json describes it all.
set -euo pipefail
umask 022

here=${BASH_SOURCE[0]%/*}
[[ $here != "${BASH_SOURCE[0]}" ]] || here=.
REPO=$(cd "$here/../.." && pwd)
LAB=${CLONEBOX_LAB_DIR:-$REPO/.lab}
[[ $LAB == /* ]] || LAB=$(realpath -m "$LAB")
[[ $LAB != *[[:space:]]* ]] || { echo "jump: CLONEBOX_LAB_DIR must not contain spaces: '$LAB'" >&2; exit 1; }
NSP=${CLONEBOX_LAB_NS:-cbx}
NET=${CLONEBOX_LAB_NET:-10.213}
[[ $NSP =~ ^[a-z][a-z0-9]{0,3}$ ]] || { echo "jump: CLONEBOX_LAB_NS must be 1-4 lowercase letters or digits" >&2; exit 1; }
[[ $NET =~ ^10\.([0-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5])$ ]] || { echo "jump: CLONEBOX_LAB_NET must be 10.X" >&2; exit 1; }
J=$LAB/jump
URI="test://$J/node.xml"

# node  parent  subnet  (the node is .2 of $NET.subnet.0/30; its parent's end is .1; parent "host" = the host)
NODES=(
  "hv1 host 240"
  "hv2 hv1 241"
  "inner-1 hv1 242"
  "inner-2 hv2 243"
  "inner-3 hv1 244"
)
declare -A PARENT ADDR PADDR NS
ORDER=()
for entry in "${NODES[@]}"; do
  read -r node parent subnet <<<"$entry"
  PARENT[$node]=$parent ADDR[$node]=$NET.$subnet.2 PADDR[$node]=$NET.$subnet.1 NS[$node]=$NSP-j${node/inner-/g}
  ORDER+=("$node")
done
GUESTS=(inner-1 inner-2 inner-3)
declare -A VIA=([inner-1]="hv1" [inner-2]="hv1 hv2" [inner-3]="hv1")

die() { echo "jump: $*" >&2; exit 1; }
log() { echo "jump: $*" >&2; }
((EUID == 0)) || { echo "the jump lab needs root for network namespaces" >&2; exit 2; }

# shellcheck source=claim.sh
source "$here/claim.sh"

lock_lab() {
  mkdir -p "$LAB"
  exec 9>"$LAB/.lock"
  flock -w 300 9 || die "another lab script has held $LAB/.lock for 5 minutes"
  claim_prefix # the same claim as fleet.sh (claim.sh): one lab per name prefix
}

ns_exists() { [[ -e /run/netns/$1 ]]; }
# The node's interface towards its parent is eth0; the parent's towards it is j-<node>, or $NSP-j<node> on the host.
parent_if() { if [[ ${PARENT[$1]} == host ]]; then echo "${NS[$1]}"; else echo "j-$1"; fi; }
in_parent() { # node command...: run the command where the node's parent end is (the host, or its hypervisor)
  local node=$1
  shift
  if [[ ${PARENT[$node]} == host ]]; then "$@"; else ip netns exec "${NS[${PARENT[$node]}]}" "$@"; fi
}

write_if_changed() { # file content [mode]
  local old=""
  [[ -f $1 ]] && old=$(<"$1")
  [[ -f $1 && $old == "${2%$'\n'}" ]] && return 0
  printf '%s' "$2" >"$1.tmp.$$" && chmod "${3:-644}" "$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"
}

ensure_keys() {
  local node a b known=""
  mkdir -p "$LAB/ssh" "$J/hostkeys"
  [[ -f $LAB/ssh/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C clonebox-lab-client -f "$LAB/ssh/id_ed25519"
  write_if_changed "$J/authorized_keys" "$(<"$LAB/ssh/id_ed25519.pub")"$'\n'
  for node in "${ORDER[@]}"; do
    [[ -f $J/hostkeys/$node ]] || ssh-keygen -q -t ed25519 -N '' -C "clonebox-jump-$node" -f "$J/hostkeys/$node"
    read -r a b _ <"$J/hostkeys/$node.pub"
    known+="${ADDR[$node]} $a $b"$'\n'
  done
  write_if_changed "$J/known_hosts" "$known"
}

# The node's namespace, its link to its parent, addresses; nothing routes beyond a /30 and nothing forwards.
ensure_net() { # node
  local node=$1 ns=${NS[$1]} pif inside
  pif=$(parent_if "$node")
  if ns_exists "$ns" && in_parent "$node" ip -br -4 addr show dev "$pif" 2>/dev/null | grep -q " ${PADDR[$node]}/30" \
    && [[ $(ip -n "$ns" -br -4 addr show dev eth0 2>/dev/null) == *" ${ADDR[$node]}/30"* ]]; then
    inside=$(ip -n "$ns" -br link show dev eth0)
    [[ $inside == *" UP "* || $inside == *"LOWERLAYERDOWN"* ]] || ip -n "$ns" link set eth0 up
    return 0
  fi
  ip netns del "$ns" 2>/dev/null || true
  in_parent "$node" ip link del "$pif" 2>/dev/null || true
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=0
  if [[ ${PARENT[$node]} == host ]]; then
    ip link add "$pif" type veth peer name eth0 netns "$ns"
  else
    ip -n "${NS[${PARENT[$node]}]}" link add "$pif" type veth peer name eth0 netns "$ns"
  fi
  in_parent "$node" ip addr add "${PADDR[$node]}/30" dev "$pif"
  in_parent "$node" ip link set "$pif" up
  ip -n "$ns" addr add "${ADDR[$node]}/30" dev eth0
  ip -n "$ns" link set eth0 up
}

sshd_pid() { # node → PID of its listener, or empty
  PID=""
  [[ -f $J/$1/sshd.pid ]] && read -r PID <"$J/$1/sshd.pid" 2>/dev/null || true
  [[ $PID =~ ^[0-9]+$ && -e /proc/$PID ]] && [[ $(</proc/$PID/comm) == sshd ]] || PID=""
}

listening() { ss -N "${NS[$1]}" -ltnH 2>/dev/null | grep -q " ${ADDR[$1]}:22 "; }

ensure_sshd() { # node
  local node=$1 d=$J/$1 i extra=""
  mkdir -p "$d/root" /run/sshd
  install -m 600 "$J/hostkeys/$node" "$d/ssh_host_ed25519_key"
  # Guests also listen on their own loopback, for a `tcp localhost:22` check through the tunnel.
  [[ $node == inner-* ]] && extra="ListenAddress 127.0.0.1:22"
  write_if_changed "$d/sshd_config" "# Generated by test/lab/jump.sh for $node
ListenAddress ${ADDR[$node]}:22
$extra
HostKey $d/ssh_host_ed25519_key
PidFile $d/sshd.pid
AuthorizedKeysFile $J/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
StrictModes no
MaxStartups 100:30:200
AllowTcpForwarding yes
PrintMotd no
PrintLastLog no
"
  sshd_pid "$node"
  [[ -n $PID ]] && listening "$node" && return 0
  [[ -n $PID ]] && kill "$PID" 2>/dev/null || true
  # shellcheck disable=SC2016 # $1.. belong to the inner sh
  setsid ip netns exec "${NS[$node]}" /bin/sh -c 'mount --bind "$1" /root && exec /usr/sbin/sshd -f "$2" -E "$3"' \
    jump-sshd "$d/root" "$d/sshd_config" "$d/sshd.log" 9>&- </dev/null >>"$d/start.log" 2>&1
  for ((i = 0; i < 200; i++)); do listening "$node" && return 0; sleep 0.05; done
  die "$node: sshd is not listening on ${ADDR[$node]}:22 after 10 s (see $d/sshd.log)"
}

ip2int() { local IFS=.; set -- $1; INT=$((($1 << 24) + ($2 << 16) + ($3 << 8) + $4)); }
int2ip() { IP="$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"; }

# The guests as libvirt test-driver domains: the active domain with id N reports network ip + 20*(N-1) + 1.
write_libvirt_and_json() {
  local g id=0 nets="" doms="" vms="" nodes="" sep="" node hops h
  for g in "${GUESTS[@]}"; do
    id=$((id + 1))
    ip2int "${ADDR[$g]}"
    int2ip $((INT - (20 * (id - 1) + 1)))
    nets+="  <network><name>$NSP-j$g</name><ip address='$IP' prefix='30'/></network>"$'\n'
    doms+="  <domain type='test'><name>$g</name><uuid>cb0c1a60-0000-4000-9000-00000000000$id</uuid><memory unit='MiB'>256</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices><interface type='network'><mac address='52:54:00:cb:f0:0$id'/><source network='$NSP-j$g'/></interface></devices></domain>"$'\n'
    hops="" h=""
    for node in ${VIA[$g]}; do hops+="$h\"$node\""; h=","; done
    vms+="$sep\"$g\":{\"address\":\"${ADDR[$g]}\",\"namespace\":\"${NS[$g]}\",\"via\":[$hops]}"
    sep=","
  done
  sep=""
  for node in hv1 hv2; do
    nodes+="$sep\"$node\":{\"address\":\"${ADDR[$node]}\",\"namespace\":\"${NS[$node]}\",\"sshdLog\":\"$J/$node/sshd.log\"}"
    sep=","
  done
  write_if_changed "$J/node.xml" "<!-- Generated by test/lab/jump.sh: the guests behind the jump hosts. -->
<node>
$nets$doms</node>
"
  write_if_changed "$J/jump.json" "{\"uri\":\"$URI\",\"identityFile\":\"$LAB/ssh/id_ed25519\",\"knownHostsFile\":\"$J/known_hosts\",\"jumpHosts\":{$nodes},\"guests\":{$vms}}
"
}

cmd_up() {
  lock_lab
  local t0=$SECONDS node
  mkdir -p "$J"
  # Nothing for the lab's /16 may follow the default route out of this machine.
  [[ $(ip -4 route show table main type unreachable) == *"$NET.0.0/16"* ]] || ip route add unreachable "$NET.0.0/16"
  ensure_keys
  for node in "${ORDER[@]}"; do ensure_net "$node"; done
  for node in "${ORDER[@]}"; do ensure_sshd "$node"; done
  write_libvirt_and_json
  log "jump lab is up ($((SECONDS - t0)) s): $J/jump.json"
}

cmd_down() {
  lock_lab
  local node i p
  for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do
    node=${ORDER[$i]}
    sshd_pid "$node"
    [[ -n $PID ]] && kill "$PID" 2>/dev/null || true
    if ns_exists "${NS[$node]}"; then
      for p in $(ip netns pids "${NS[$node]}" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
      ip netns del "${NS[$node]}" 2>/dev/null || true
    fi
  done
  ip link del "$NSP-jhv1" 2>/dev/null || true
  for node in "${ORDER[@]}"; do rm -rf "${J:?}/$node"; done
  rm -f "$J/node.xml" "$J/jump.json"
  log "jump lab is down (kept $J/hostkeys)"
}

cmd_status() {
  local node bad=0
  for node in "${ORDER[@]}"; do
    if ns_exists "${NS[$node]}" && listening "$node"; then echo "$node ${ADDR[$node]} sshd up"; else echo "$node ${ADDR[$node]} DOWN"; bad=1; fi
  done
  return $bad
}

cmd_fault() {
  local node=${1:-} what=${2:-} arg=${3:-}
  [[ -n ${NS[$node]:-} ]] || die "no node '$node' (nodes: ${ORDER[*]})"
  lock_lab
  case $what in
    stop) sshd_pid "$node"; [[ -z $PID ]] || { kill "$PID"; for ((i = 0; i < 100; i++)); do listening "$node" || break; sleep 0.05; done; } ;;
    start) ensure_sshd "$node" ;;
    link) [[ $arg == up || $arg == down ]] || die "link up|down"; ip -n "${NS[$node]}" link set eth0 "$arg" ;;
    clear) ip -n "${NS[$node]}" link set eth0 up; ensure_sshd "$node" ;;
    *) die "fault NODE stop|start|link down|link up|clear" ;;
  esac
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  fault) shift; cmd_fault "$@" ;;
  *) echo "usage: jump.sh up|down|status|fault NODE stop|start|link down|link up|clear" >&2; exit 2 ;;
esac
