#!/bin/sh
# Run the QEMU guest agent on the virtio-serial port libvirt names org.qemu.guest_agent.0
# (no udev here, so find /dev/vportNpM through sysfs). Idle when there is no agent or no port.
[ -x /usr/sbin/qemu-ga ] || exec sleep 2147483647
for _ in 1 2 3 4 5 6 7 8 9 10; do
  for p in /sys/class/virtio-ports/*; do
    [ -r "$p/name" ] || continue
    if [ "$(cat "$p/name")" = org.qemu.guest_agent.0 ]; then
      exec /usr/sbin/qemu-ga -m virtio-serial -p "/dev/${p##*/}" -t /run
    fi
  done
  sleep 1
done
exec sleep 2147483647
