# Shared names and helpers of the VM lab. Sourced by build-image.sh, up.sh and down.sh.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the names are used by the scripts that source this file

VMLAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VMLAB_CACHE=${CLONEBOX_VM_CACHE:-/var/cache/clonebox-vm}
# Not under any directory that libvirtd's mount namespace bind-mounts over, so the socket and the
# state file are reachable from the host's mount namespace too.
VMLAB_RUN=${CLONEBOX_VMLAB_RUN:-/run/clonebox-vmlab}
VMLAB_NETNS=cbx-vmlab
VMLAB_NET=cbxnet
VMLAB_BRIDGE=cbxbr0
# The network lives only inside the namespace; this range is not routed on the host (192.0.2.0/24).
VMLAB_SUBNET_PREFIX=192.168.150
VMLAB_VM=e2e-vm
VMLAB_VM_MAC=52:54:00:cb:00:01
VMLAB_OFF=e2e-off
VMLAB_OFF_MAC=52:54:00:cb:00:02
VMLAB_URI="qemu:///system?socket=$VMLAB_RUN/libvirt-sock"
# Directories libvirtd sees as its own; each is bind-mounted over in its private mount namespace.
VMLAB_PRIVATE_DIRS=(/etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt)

log() { printf '[vmlab] %s\n' "$*" >&2; }
die() { printf '[vmlab] error: %s\n' "$*" >&2; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# The kernel package linux-image-amd64 points at (apt-cache costs ~1.2 s here: apt keeps no cache).
vmlab_kernel_pkg() {
  local pkg
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [[ -n $pkg ]] || return 1
  echo "$pkg"
}

# Inputs of the image: these scripts, the guest files and the installed package versions that go
# into it. The kernel is what linux-image-amd64 resolved to at build time (see manifest.json); it is
# not part of the hash so a cached image needs neither apt nor the network. Delete the image
# directory to pick up a newer kernel.
vmlab_image_hash() {
  {
    dpkg-query -W -f '${Package} ${Version}\n' busybox-static dropbear-bin qemu-guest-agent libc6 2>/dev/null
    cat "$VMLAB_DIR/build-image.sh" "$VMLAB_DIR"/guest/*
  } | sha256sum | cut -c1-16
}

vmlab_image_dir() {
  local h
  h=$(vmlab_image_hash) || return 1
  echo "$VMLAB_CACHE/$h"
}

# Use KVM only where a hardware KVM module is loaded: this machine's /dev/kvm is PVM (kvm_pvm),
# which cannot run Debian's kernel, so there it is TCG.
vmlab_accel() {
  if [[ -w /dev/kvm ]] && grep -qE '^kvm_(intel|amd) ' /proc/modules 2>/dev/null; then echo kvm; else echo tcg; fi
}

vmlab_in_ns() { ip netns exec "$VMLAB_NETNS" "$@"; }
vmlab_virsh() { virsh -q -c "$VMLAB_URI" "$@"; }

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# up.sh and down.sh run one at a time (two test runs at once would otherwise tear each other's lab
# down halfway). The lock file is outside the run directory, which down.sh removes.
vmlab_lock() {
  [[ -n ${VMLAB_LOCKED:-} ]] && return 0
  exec 8>"$VMLAB_RUN.lock"
  flock -w "${1:-300}" 8 || die "another up.sh/down.sh holds $VMLAB_RUN.lock"
  export VMLAB_LOCKED=1
}
