#!/usr/bin/env bash
# Stop the VM lab: destroy the guests, stop dnsmasq/libvirtd/virtlogd, remove netns cbx-vmlab and
# the run directory (logs of the last run are kept in $CLONEBOX_VM_CACHE/last-run/). Idempotent.
# Only processes this lab started are stopped: by their pid files, then whatever still runs inside
# the lab's own network namespace.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

quiet=false
[[ ${1:-} == --quiet ]] && quiet=true
[[ $EUID -eq 0 ]] || die "must run as root"
vmlab_lock 300
P=$VMLAB_RUN/private

stop_pid() { # pid: TERM, then KILL after ~5 s
  local pid=$1 i
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 50; i++)); do pid_alive "$pid" || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  for ((i = 0; i < 20; i++)); do pid_alive "$pid" || return 0; sleep 0.1; done
}
stop_pidfile() { [[ -f $1 ]] && stop_pid "$(cat "$1" 2>/dev/null)"; rm -f "$1"; }

if [[ -f $VMLAB_RUN/libvirtd.pid ]] && pid_alive "$(cat "$VMLAB_RUN/libvirtd.pid")"; then
  for d in "$VMLAB_VM" "$VMLAB_OFF"; do timeout 15 virsh -q -c "$VMLAB_URI" destroy "$d" >/dev/null 2>&1; done
  timeout 15 virsh -q -c "$VMLAB_URI" net-destroy "$VMLAB_NET" >/dev/null 2>&1
fi
# What libvirt did not stop (a wedged daemon, or one that died before us).
for f in "$P"/run/qemu/*.pid "$P"/run/network/*.pid; do [[ -e $f ]] && stop_pidfile "$f"; done
stop_pidfile "$VMLAB_RUN/libvirtd.pid"
stop_pidfile "$VMLAB_RUN/virtlogd.pid"

if ip netns list 2>/dev/null | grep -qw "^$VMLAB_NETNS"; then
  for pid in $(ip netns pids "$VMLAB_NETNS" 2>/dev/null); do stop_pid "$pid"; done
  ip netns del "$VMLAB_NETNS"
fi

if [[ -d $VMLAB_RUN ]]; then
  rm -rf "$VMLAB_CACHE/last-run"
  mkdir -p "$VMLAB_CACHE/last-run"
  cp -r "$P/log" "$VMLAB_CACHE/last-run/" 2>/dev/null
  cp "$VMLAB_RUN"/*.console.log "$VMLAB_RUN"/state.json "$VMLAB_CACHE/last-run/" 2>/dev/null
  rm -rf "$VMLAB_RUN"
fi
$quiet || log "down (logs of the last run: $VMLAB_CACHE/last-run/)"
exit 0
