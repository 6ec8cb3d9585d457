#!/usr/bin/env bash
# Installs the Debian packages the fleet lab (test/lab/fleet.sh), the VM lab (test/lab/vm) and the native
# libvirt binding need.
# Idempotent: when everything is present it only says so. Never leaves a service running: Debian's
# postinst scripts try to start nginx, redis and postgres, which the lab starts itself inside namespaces.
set -euo pipefail

PACKAGES=(
  openssh-server openssh-client nginx-light redis-server postgresql
  libvirt-clients libvirt0 libvirt-dev pkg-config build-essential iproute2 procps
  # Real consumers that validate outputs in tests: promtool (Prometheus text format), xmllint (JUnit XML).
  prometheus libxml2-utils
  # A real Alertmanager for the alerting tests (test/lab/alertmanager.sh starts it on loopback).
  prometheus-alertmanager curl
  # The VM lab (test/lab/vm): a real QEMU guest under libvirtd for the end-to-end path (test/e2e/vm.test.ts).
  libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 dnsmasq-base iptables busybox-static dropbear-bin
  kmod cpio xz-utils qemu-guest-agent
  # grpc, dns and https probe tests (test/lab/extra-services.ts): certificates made with openssl; dnsmasq (dnsmasq-base above).
  openssl
)

if [[ $(id -u) -ne 0 ]]; then
  echo "clonebox: installing Debian packages needs root; run this script as root (e.g. with sudo)." >&2
  exit 1
fi
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "clonebox: this script needs a Debian-based system with dpkg and apt-get." >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "clonebox: Debian packages present"
  exit 0
fi

echo "clonebox: installing Debian packages: ${missing[*]}"

# Ports the packaged services would take in the host network namespace, and who listens there now:
# anything listening there after the install that was not before was started by the install.
SERVICE_PORTS='( sport = :22 or sport = :80 or sport = :6379 or sport = :5432 or sport = :9090 or sport = :9093 or sport = :9094 or sport = :9100 )'
listener_pids() {
  ss -ltnpH "$SERVICE_PORTS" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u || true
}
before=$(listener_pids)

# policy-rc.d exiting 101 tells invoke-rc.d "do not start services" (Debian policy §9.3.3.1).
POLICY=/usr/sbin/policy-rc.d
policy_backup=""
restore_policy() {
  if [[ -n $policy_backup ]]; then
    mv -f "$policy_backup" "$POLICY"
  else
    rm -f "$POLICY"
  fi
}
if [[ -e $POLICY ]]; then
  policy_backup=$(mktemp /usr/sbin/.policy-rc.d.clonebox.XXXXXX)
  cp -p "$POLICY" "$policy_backup"
fi
trap restore_policy EXIT
printf '#!/bin/sh\n# clonebox install-deps.sh: do not start services during the install.\nexit 101\n' >"$POLICY"
chmod 755 "$POLICY"

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

# Stop whatever the install started anyway (a postinst that ignores policy-rc.d): by the pid that
# listens, never by name, and only processes that were not listening before the install.
after=$(listener_pids)
for pid in $after; do
  if ! grep -qx "$pid" <<<"$before"; then
    echo "clonebox: stopping $(cat "/proc/$pid/comm" 2>/dev/null || echo process) (pid $pid) started by the install" >&2
    kill -TERM "$pid" 2>/dev/null || true
  fi
done
