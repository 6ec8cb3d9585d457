#!/usr/bin/env bash
# Start the VM lab: libvirtd inside network namespace cbx-vmlab (and a private mount namespace), an
# isolated libvirt network with DHCP, a running guest e2e-vm and a defined-but-off guest e2e-off.
# Waits until libvirt reports e2e-vm's DHCP lease AND its SSH server answers, then writes
# $VMLAB_RUN/state.json and $VMLAB_RUN/clonebox.yaml. Idempotent: an answering lab is left as is.
#
# Nothing here reaches beyond the namespace: the libvirt network has no <forward> (no NAT, no uplink).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BOOT_TIMEOUT=${CLONEBOX_VMLAB_BOOT_TIMEOUT:-90}
# A boot that has no lease after this long is restarted once (seen twice in ~50 boots: the guest
# printed "init done" and then nothing; a busy machine boots in 5-20 s).
RETRY_AFTER=${CLONEBOX_VMLAB_RETRY_AFTER:-45}
DAEMON_TIMEOUT=${CLONEBOX_VMLAB_DAEMON_TIMEOUT:-60}

[[ $EUID -eq 0 ]] || die "must run as root (network and mount namespaces, libvirtd)"
for tool in ip unshare virsh libvirtd virtlogd qemu-system-x86_64 dnsmasq iptables ssh timeout; do
  command -v "$tool" >/dev/null || die "missing $tool: apt-get install --no-install-recommends libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 dnsmasq-base iptables iproute2 openssh-client"
done

vmlab_lock 300

ssh_opts() { # the options every client uses to reach the guest (strict host key checking)
  echo -i "$1" -o UserKnownHostsFile="$VMLAB_RUN/known_hosts" -o GlobalKnownHostsFile=/dev/null \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=3 -o LogLevel=ERROR
}

# --- already up? ---------------------------------------------------------------------------------
if [[ -f $VMLAB_RUN/state.json && -f $VMLAB_RUN/libvirtd.pid ]] && pid_alive "$(cat "$VMLAB_RUN/libvirtd.pid")"; then
  addr=$(sed -n 's/^  "address": "\(.*\)",$/\1/p' "$VMLAB_RUN/state.json")
  key=$(sed -n 's/^  "sshKey": "\(.*\)",$/\1/p' "$VMLAB_RUN/state.json")
  running_image=$(sed -n 's/^  "imageDir": "\(.*\)",$/\1/p' "$VMLAB_RUN/state.json")
  # shellcheck disable=SC2046
  if [[ -n $addr && -n $key && $running_image == "$("$VMLAB_DIR/build-image.sh" --check)" ]] && vmlab_in_ns ssh $(ssh_opts "$key") "root@$addr" true 2>/dev/null; then
    log "already up: $VMLAB_RUN/state.json"
    cat "$VMLAB_RUN/state.json"
    exit 0
  fi
fi
"$VMLAB_DIR/down.sh" --quiet # clear what a half-started lab left

t_up=$(now_ms)
image=$("$VMLAB_DIR/build-image.sh")
build_ms=$(($(now_ms) - t_up))
kernel_file=${CLONEBOX_VM_KERNEL:-$(sed -n 's/^  "kernel": "\(.*\)",$/\1/p' "$image/manifest.json")}
[[ -f $image/$kernel_file ]] || die "no kernel $image/$kernel_file"
accel=$(vmlab_accel)

# libvirtd will not start without this user, even with user="root" in qemu.conf.
if ! getent passwd libvirt-qemu >/dev/null; then
  log "creating system user libvirt-qemu"
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin libvirt-qemu
fi

# --- private libvirt directories -----------------------------------------------------------------
# Fresh per run (no stale leases, no old definitions), except /var/cache/libvirt: its capabilities
# cache turns libvirtd's ~8 s first start into ~0.1 s.
P=$VMLAB_RUN/private
mkdir -p "$VMLAB_RUN" "$P/etc" "$P/run" "$P/lib" "$P/log/qemu" "$VMLAB_CACHE/libvirt-cache"
chmod 0755 "$VMLAB_RUN"
caps_cached=false
compgen -G "$VMLAB_CACHE/libvirt-cache/qemu/capabilities/*.xml" >/dev/null && caps_cached=true

cat >"$P/etc/libvirtd.conf" <<EOF
# VM lab: sockets outside the private mounts, so the host mount namespace can connect.
unix_sock_dir = "$VMLAB_RUN"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
EOF
cat >"$P/etc/qemu.conf" <<EOF
# VM lab: qemu as root without labelling; cgroups are not usable inside 'ip netns exec'.
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
dynamic_ownership = 0
remember_owner = 0
namespaces = [ ]
EOF
cat >"$P/etc/virtlogd.conf" <<EOF
log_outputs = "3:file:/var/log/libvirt/virtlogd.log"
EOF

cat >"$VMLAB_RUN/start-daemons.sh" <<EOF
#!/bin/bash
# Runs inside netns $VMLAB_NETNS, in a new private mount namespace that the daemons keep.
set -e
mount --bind "$P/etc" /etc/libvirt
mount --bind "$P/run" /run/libvirt
mount --bind "$P/lib" /var/lib/libvirt
mount --bind "$P/log" /var/log/libvirt
mount --bind "$VMLAB_CACHE/libvirt-cache" /var/cache/libvirt
virtlogd -d -p "$VMLAB_RUN/virtlogd.pid"
libvirtd -d -p "$VMLAB_RUN/libvirtd.pid"
EOF
for d in "${VMLAB_PRIVATE_DIRS[@]}"; do mkdir -p "$d"; done # bind-mount targets (empty if absent)

# --- namespace and daemons -----------------------------------------------------------------------
ip netns add "$VMLAB_NETNS"
ip -n "$VMLAB_NETNS" link set lo up

t0=$(now_ms)
# 8>&-: the daemons must not inherit (and so hold forever) the lock of vmlab_lock.
vmlab_in_ns unshare --mount --propagation private bash "$VMLAB_RUN/start-daemons.sh" 8>&- ||
  die "libvirtd/virtlogd did not start; see $P/log/libvirtd.log"
deadline=$((t0 + DAEMON_TIMEOUT * 1000))
until vmlab_virsh version >/dev/null 2>&1; do
  (($(now_ms) < deadline)) || die "libvirtd did not answer on $VMLAB_RUN/libvirt-sock within ${DAEMON_TIMEOUT}s; see $P/log/libvirtd.log"
  sleep 0.05
done
libvirtd_ms=$(($(now_ms) - t0))
log "libvirtd answers after ${libvirtd_ms} ms (capabilities cache kept: $caps_cached)"

# --- network and domains -------------------------------------------------------------------------
cat >"$VMLAB_RUN/$VMLAB_NET.xml" <<EOF
<!-- Isolated (no <forward>): DHCP from dnsmasq; reachable only from inside netns $VMLAB_NETNS. -->
<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>
  <name>$VMLAB_NET</name>
  <bridge name='$VMLAB_BRIDGE' stp='off' delay='0'/>
  <dns enable='no'/>
  <ip address='$VMLAB_SUBNET_PREFIX.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='$VMLAB_SUBNET_PREFIX.100' end='$VMLAB_SUBNET_PREFIX.199'/>
    </dhcp>
  </ip>
  <!-- dnsmasq pings an address before offering it: 3 s per boot for nothing here. -->
  <dnsmasq:options>
    <dnsmasq:option value='no-ping'/>
  </dnsmasq:options>
</network>
EOF

domain_xml() { # name mac
  local type=qemu cpu="<cpu mode='maximum'/>"
  [[ $accel == kvm ]] && type=kvm cpu="<cpu mode='host-passthrough'/>"
  cat <<EOF
<domain type='$type'>
  <name>$1</name>
  <description>clonebox VM lab guest (test/lab/vm)</description>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$image/$kernel_file</kernel>
    <initrd>$image/initrd.cpio</initrd>
    <cmdline>${CLONEBOX_VM_CMDLINE:-console=ttyS0 quiet}</cmdline>
  </os>
  <features><acpi/></features>
  $cpu
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <controller type='usb' model='none'/>
    <interface type='network'>
      <source network='$VMLAB_NET'/>
      <mac address='$2'/>
      <model type='virtio'/>
    </interface>
    <!-- A pty (for 'virsh console') whose output virtlogd also writes to a file. -->
    <serial type='pty'>
      <log file='$VMLAB_RUN/$1.console.log' append='off'/>
      <target port='0'/>
    </serial>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}
domain_xml "$VMLAB_VM" "$VMLAB_VM_MAC" >"$VMLAB_RUN/$VMLAB_VM.xml"
domain_xml "$VMLAB_OFF" "$VMLAB_OFF_MAC" >"$VMLAB_RUN/$VMLAB_OFF.xml"

vmlab_virsh net-define "$VMLAB_RUN/$VMLAB_NET.xml" >/dev/null
vmlab_virsh net-start "$VMLAB_NET" >/dev/null || die "network $VMLAB_NET did not start; see $P/log/libvirtd.log"
vmlab_virsh define "$VMLAB_RUN/$VMLAB_VM.xml" >/dev/null
vmlab_virsh define "$VMLAB_RUN/$VMLAB_OFF.xml" >/dev/null

# --- boot and wait for lease + SSH ---------------------------------------------------------------
key=$image/id_ed25519
t_boot=$(now_ms)
vmlab_virsh start "$VMLAB_VM" >/dev/null || die "$VMLAB_VM did not start; see $P/log/qemu/$VMLAB_VM.log"
deadline=$((t_boot + BOOT_TIMEOUT * 1000))
addr='' lease_ms='' ssh_ms='' boots=1
while (($(now_ms) < deadline)); do
  if [[ -z $addr && $boots -eq 1 ]] && (($(now_ms) - t_boot > RETRY_AFTER * 1000)); then
    cp "$VMLAB_RUN/$VMLAB_VM.console.log" "$VMLAB_RUN/$VMLAB_VM.console.boot1.log" 2>/dev/null
    log "no lease after ${RETRY_AFTER}s: restarting $VMLAB_VM once (first console: $VMLAB_VM.console.boot1.log)"
    tail -n 5 "$VMLAB_RUN/$VMLAB_VM.console.boot1.log" >&2 2>/dev/null
    vmlab_virsh destroy "$VMLAB_VM" >/dev/null 2>&1
    vmlab_virsh start "$VMLAB_VM" >/dev/null || die "$VMLAB_VM did not start again"
    boots=2
  fi
  if [[ -z $addr ]]; then
    addr=$(vmlab_virsh domifaddr "$VMLAB_VM" --source lease 2>/dev/null | awk '$3 == "ipv4" {sub(/\/.*/, "", $4); print $4; exit}') || true
    if [[ -n $addr ]]; then
      lease_ms=$(($(now_ms) - t_boot))
      echo "$addr $(cat "$image/host_ed25519.pub")" >"$VMLAB_RUN/known_hosts"
    fi
  fi
  # A lease is not readiness (it can predate the guest's address): SSH answering is.
  # shellcheck disable=SC2046
  if [[ -n $addr ]] && vmlab_in_ns timeout 5 ssh $(ssh_opts "$key") "root@$addr" true 2>/dev/null; then
    ssh_ms=$(($(now_ms) - t_boot))
    break
  fi
  sleep 0.2
done
if [[ -z $ssh_ms ]]; then
  log "last lines of the guest console ($VMLAB_RUN/$VMLAB_VM.console.log):"
  tail -n 20 "$VMLAB_RUN/$VMLAB_VM.console.log" >&2 || true
  die "$VMLAB_VM: no lease+SSH within ${BOOT_TIMEOUT}s (lease: ${addr:-none}); the lab stays up for inspection, run down.sh"
fi
up_ms=$(($(now_ms) - t_up))

# --- state for tests and for the CLI -------------------------------------------------------------
cat >"$VMLAB_RUN/clonebox.yaml" <<EOF
# Written by test/lab/vm/up.sh for the VM lab. Run inside the lab's network namespace:
#   ip netns exec $VMLAB_NETNS node bin/clonebox.js health check $VMLAB_VM --connect '$VMLAB_URI' --config $VMLAB_RUN/clonebox.yaml
libvirt:
  uri: "$VMLAB_URI"
  address_source: lease
ssh:
  user: root
  identity_file: $key
  known_hosts: $VMLAB_RUN/known_hosts
  host_key_policy: strict
  # TCG: the guest's key exchange is slow when the machine is busy.
  connect_timeout: 10s
health_checks:
  - name: echo-pong
    type: command
    exec: echo PONG
    expected_output: PONG
  - name: disk-root
    type: disk
    path: /
  - name: memory
    type: memory
  # localhost means the guest: this httpd listens only on the guest's 127.0.0.1.
  - name: guest-http
    type: http
    url: http://localhost:8080/health
    expected_json:
      status: ok
  - name: guest-ssh
    type: tcp
    host: localhost
    port: 22
EOF

cat >"$VMLAB_RUN/state.json.tmp" <<EOF
{
  "uri": "$VMLAB_URI",
  "netns": "$VMLAB_NETNS",
  "vm": "$VMLAB_VM",
  "offVm": "$VMLAB_OFF",
  "network": "$VMLAB_NET",
  "address": "$addr",
  "mac": "$VMLAB_VM_MAC",
  "sshUser": "root",
  "sshKey": "$key",
  "knownHosts": "$VMLAB_RUN/known_hosts",
  "hostKey": "$(cat "$image/host_ed25519.pub")",
  "configFile": "$VMLAB_RUN/clonebox.yaml",
  "runDir": "$VMLAB_RUN",
  "imageDir": "$image",
  "kernel": "$image/$kernel_file",
  "consoleLog": "$VMLAB_RUN/$VMLAB_VM.console.log",
  "accel": "$accel",
  "guestAgent": $(sed -n 's/^  "guestAgent": \(true\|false\),$/\1/p' "$image/manifest.json"),
  "guestPorts": { "ssh": 22, "http": 80, "httpLoopback": 8080, "tcpEcho": 6379 },
  "timings": {
    "imageMs": $build_ms,
    "libvirtdStartMs": $libvirtd_ms,
    "capabilitiesCached": $caps_cached,
    "bootToLeaseMs": $lease_ms,
    "bootToSshMs": $ssh_ms,
    "boots": $boots,
    "upTotalMs": $up_ms
  }
}
EOF
mv "$VMLAB_RUN/state.json.tmp" "$VMLAB_RUN/state.json"

log "up in ${up_ms} ms ($accel, kernel $kernel_file): libvirtd ${libvirtd_ms} ms, boot to lease ${lease_ms} ms, boot to SSH ${ssh_ms} ms"
log "  uri:     $VMLAB_URI"
log "  address: $addr   (from inside: ip netns exec $VMLAB_NETNS ssh -i $key -o UserKnownHostsFile=$VMLAB_RUN/known_hosts root@$addr)"
log "  state:   $VMLAB_RUN/state.json"
cat "$VMLAB_RUN/state.json"
