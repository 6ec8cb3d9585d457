#!/usr/bin/env bash
# Build the VM lab's guest image from Debian packages: the Debian kernel (uncompressed vmlinux when
# it can be extracted: under TCG the compressed kernel's self-decompression costs ~2.4 s per boot)
# and an uncompressed initramfs with busybox init, udhcpc, dropbear, busybox httpd and the QEMU guest
# agent. Output goes to $CLONEBOX_VM_CACHE/<hash of inputs>/ and is reused while the inputs are equal.
#
#   build-image.sh            build if needed; prints the image directory on stdout
#   build-image.sh --check    prints the image directory; exit 0 if built, 3 if not
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir=$(vmlab_image_dir) || die "cannot compute the image hash"
if [[ ${1:-} == --check ]]; then
  echo "$dir"
  [[ -f $dir/manifest.json ]] && exit 0 || exit 3
fi
if [[ -f $dir/manifest.json ]]; then
  touch "$dir" # last use, for pruning
  log "image cached: $dir ($(du -sh "$dir" | cut -f1))"
  echo "$dir"
  exit 0
fi

for tool in apt-get dpkg-deb depmod modprobe cpio busybox dropbearkey ssh-keygen xz flock ldd; do
  command -v "$tool" >/dev/null || die "missing $tool (apt-get install --no-install-recommends busybox-static dropbear-bin kmod cpio xz-utils openssh-client util-linux)"
done
[[ -x /usr/sbin/dropbear ]] || die "missing /usr/sbin/dropbear (apt-get install dropbear-bin)"

mkdir -p "$VMLAB_CACHE"
exec 9>"$VMLAB_CACHE/.build.lock"
flock -w 600 9 || die "another build holds $VMLAB_CACHE/.build.lock"
if [[ -f $dir/manifest.json ]]; then echo "$dir"; exit 0; fi # built by the holder of the lock

t0=$(now_ms)
work=$(mktemp -d "$VMLAB_CACHE/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
out=$work/out root=$work/root kroot=$work/kernel
mkdir -p "$out" "$root" "$kroot"

# --- kernel package: downloaded (kept in debs/), unpacked, never installed -----------------------
kpkg=$(vmlab_kernel_pkg) || die "cannot resolve linux-image-amd64 (run apt-get update)"
mkdir -p "$VMLAB_CACHE/debs"
deb=$(ls "$VMLAB_CACHE/debs/${kpkg}_"*.deb 2>/dev/null | head -1 || true)
if [[ -z $deb ]]; then
  log "downloading $kpkg"
  (cd "$VMLAB_CACHE/debs" && apt-get -q -o APT::Sandbox::User=root download "$kpkg" >&2)
  deb=$(ls "$VMLAB_CACHE/debs/${kpkg}_"*.deb | head -1)
fi
dpkg-deb -x "$deb" "$kroot"
kver=$(ls "$kroot/lib/modules" | head -1)
[[ -n $kver && -f $kroot/boot/vmlinuz-$kver ]] || die "unexpected layout in $deb"

cp "$kroot/boot/vmlinuz-$kver" "$out/vmlinuz"
# extract-vmlinux's approach: find the compressed payload by its magic and decompress from there.
kernel=vmlinuz
extract() { # magic decompressor
  local pos
  pos=$(grep -abo -m1 "$1" "$out/vmlinuz" | head -1 | cut -d: -f1) || return 1
  [[ -n $pos ]] || return 1
  tail -c +$((pos + 1)) "$out/vmlinuz" | $2 >"$out/vmlinux" 2>/dev/null || true # trailing data is expected
  [[ $(head -c4 "$out/vmlinux" | od -An -c | tr -d ' ') == '177ELF' ]]
}
if extract $'\xfd7zXZ\x00' 'xz -dc' || extract $'\x1f\x8b\x08' 'gzip -dc' || extract $'\x28\xb5\x2f\xfd' 'zstd -dc'; then
  kernel=vmlinux
else
  rm -f "$out/vmlinux"
  log "could not extract vmlinux from vmlinuz; the guest boots the compressed kernel (slower under TCG)"
fi

# --- modules: the virtio drivers, in the order modprobe would load them ---------------------------
depmod -b "$kroot" "$kver"
mkdir -p "$root/lib/modules"
for m in virtio_pci virtio_net virtio_console virtio_rng; do
  modprobe -d "$kroot" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  cp "$ko" "$root/lib/modules/"
  basename "$ko" >>"$root/lib/modules/load-order"
done

# --- userland ------------------------------------------------------------------------------------
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/init.d,etc/dropbear,lib64,root/.ssh,www}
cp "$(command -v busybox)" "$root/bin/busybox"
for applet in $(busybox --list-full); do
  [[ -e $root/$applet || -L $root/$applet ]] || ln -s /bin/busybox "$root/$applet"
done

copy_elf() { # binary with its shared libraries, at the paths the dynamic loader searches
  local bin=$1 lib
  cp -L "$bin" "$root$bin"
  for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
    case $lib in
      */ld-linux*) cp -L "$lib" "$root/lib64/$(basename "$lib")" ;;
      *) mkdir -p "$root/lib/x86_64-linux-gnu" && cp -L "$lib" "$root/lib/x86_64-linux-gnu/$(basename "$lib")" ;;
    esac
  done
}
copy_elf /usr/sbin/dropbear
agent=false
if [[ -x /usr/sbin/qemu-ga ]]; then
  copy_elf /usr/sbin/qemu-ga
  agent=true
else
  log "qemu-guest-agent not installed: the guest has no agent (--source agent will not work)"
fi

g=$VMLAB_DIR/guest
install -m 0755 "$g/init" "$root/init"
install -m 0644 "$g/inittab" "$root/etc/inittab"
install -m 0755 "$g/rcS" "$root/etc/init.d/rcS"
install -m 0755 "$g/udhcpc.script" "$root/etc/udhcpc.script"
install -m 0755 "$g/qemu-ga.sh" "$root/etc/qemu-ga.sh"
echo clonebox-guest >"$root/etc/hostname"
# A direct-tcpip channel to "localhost" (ssh -W localhost:8080, ssh2 forwardOut) is resolved by
# dropbear through glibc in the guest: without these, "Temporary failure in name resolution".
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tclonebox-guest\n' >"$root/etc/hosts"
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
# "*" (not "!"): dropbear refuses locked accounts; with -s there is no password login anyway.
echo 'root:*:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' >"$root/etc/group"
echo /bin/sh >"$root/etc/shells"
printf '{"status":"ok"}\n' >"$root/www/health"
printf '<!doctype html><title>clonebox guest</title>\n' >"$root/www/index.html"

# --- keys: the guest's host key, and a client key authorized for root ----------------------------
dropbearkey -t ed25519 -f "$root/etc/dropbear/dropbear_ed25519_host_key" >/dev/null 2>&1
dropbearkey -y -f "$root/etc/dropbear/dropbear_ed25519_host_key" 2>/dev/null |
  awk '$1 == "ssh-ed25519" {print $1, $2}' >"$out/host_ed25519.pub"
[[ -s $out/host_ed25519.pub ]] || die "dropbearkey did not print the host public key"
ssh-keygen -q -t ed25519 -N '' -C clonebox-vmlab -f "$out/id_ed25519"
install -m 0600 "$out/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
chmod 0700 "$root/root" "$root/root/.ssh"

# --- initramfs: uncompressed newc (the kernel unpacks it faster than it decompresses one) ---------
(cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) >"$out/initrd.cpio"

build_ms=$(($(now_ms) - t0))
size() { stat -c %s "$1"; }
cat >"$out/manifest.json" <<EOF
{
  "kernelPackage": "$kpkg",
  "kernelVersion": "$kver",
  "kernel": "$kernel",
  "kernelBytes": $(size "$out/$kernel"),
  "initrd": "initrd.cpio",
  "initrdBytes": $(size "$out/initrd.cpio"),
  "guestAgent": $agent,
  "modules": [$(sed 's/.*/"&"/' "$root/lib/modules/load-order" | paste -sd,)],
  "buildMs": $build_ms,
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
chmod 0755 "$out"
rm -rf "$dir"
mv "$out" "$dir"
# Images of other inputs (older scripts, other checkouts) unused for two days.
find "$VMLAB_CACHE" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9a-f]\{16\}' -mtime +1 -exec rm -rf {} + 2>/dev/null || true
log "image built in $((build_ms / 1000)).$(printf %03d $((build_ms % 1000))) s: $dir"
log "  $kernel $(du -h "$dir/$kernel" | cut -f1), initrd.cpio $(du -h "$dir/initrd.cpio" | cut -f1), total $(du -sh "$dir" | cut -f1)"
echo "$dir"
