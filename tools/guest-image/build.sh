#!/bin/sh
# build.sh OUTDIR — build Kumo's tiny test guest from Debian packages.
#
# Output (in OUTDIR):
#   vmlinuz      the Debian kernel, booted directly (-kernel)
#   initrd.img   a busybox initramfs; its /init is tools/guest-image/init
#   disk.qcow2   a small blank root disk (the "image" the driver overlays;
#                the guest keeps a marker on it, see init)
#   cmdline      kernel arguments the guest expects
#   stamp        content hash of the inputs; a rerun with the same inputs
#                does nothing
#
# Needs (Debian): linux-image-cloud-amd64 (or linux-image-amd64),
# busybox-static, cpio, gzip, and qemu-utils for disk.qcow2.
# KUMO_GUEST_KERNEL=<version> picks a kernel when several are installed.
set -eu

out=${1:?usage: build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)

die() { echo "guest-image: $*" >&2; exit 1; }

# Pick the kernel: the requested one, else the newest installed whose
# modules are present (cloud flavour preferred: fewer drivers, faster boot).
kver=${KUMO_GUEST_KERNEL:-}
if [ -z "$kver" ]; then
	for flavour in cloud-amd64 amd64; do
		kver=$(ls /lib/modules 2>/dev/null | grep -- "-$flavour\$" | sort -V | tail -n 1 || true)
		[ -n "$kver" ] && [ -f "/boot/vmlinuz-$kver" ] && break
		kver=
	done
fi
[ -n "$kver" ] || die "no Debian kernel found; apt-get install linux-image-cloud-amd64"
kernel=/boot/vmlinuz-$kver
moddir=/lib/modules/$kver
[ -r "$kernel" ] || die "$kernel missing or unreadable"
[ -f "$moddir/modules.dep" ] || die "$moddir/modules.dep missing"
busybox=/bin/busybox
[ -x "$busybox" ] || die "$busybox missing; apt-get install busybox-static"
if ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked; apt-get install busybox-static"
fi
command -v cpio >/dev/null || die "cpio missing; apt-get install cpio"

# Modules the guest loads, by name; their dependencies come from modules.dep.
mods="virtio_pci virtio_blk virtio_net virtio_scsi isofs sr_mod ata_piix ahci button evdev"

stamp=$(
	{
		cat "$0" "$here/init" "$here/udhcpc.script"
		echo "$kver $mods"
		sha256sum "$kernel" "$busybox"
	} | sha256sum | cut -d' ' -f1
)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] &&
	[ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ]; then
	echo "guest-image: $out is up to date ($kver)"
	exit 0
fi

mkdir -p "$out"
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/bin" "$root/sbin" "$root/etc" "$root/proc" "$root/sys" "$root/dev" \
	"$root/mnt/config" "$root/www" "$root/tmp" "$root/run" "$root/usr/share/udhcpc" \
	"$root/lib/modules/$kver"

cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
cp "$here/init" "$root/init"
cp "$here/udhcpc.script" "$root/usr/share/udhcpc/default.script"
chmod 0755 "$root/init" "$root/usr/share/udhcpc/default.script"
echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"

# Resolve module dependencies from modules.dep (paths relative to moddir).
want=
for m in $mods; do
	line=$(grep -E "/$m\.ko(\.xz|\.zst|\.gz)?:" "$moddir/modules.dep" || true)
	[ -n "$line" ] || { echo "guest-image: module $m not in $kver, skipped" >&2; continue; }
	want="$want ${line%%:*} ${line#*:}"
done
want=$(printf '%s\n' $want | sort -u)
for p in $want; do
	mkdir -p "$root/lib/modules/$kver/$(dirname "$p")"
	case $p in
	*.xz) xz -dc "$moddir/$p" >"$root/lib/modules/$kver/${p%.xz}" ;;
	*.zst) zstd -qdc "$moddir/$p" >"$root/lib/modules/$kver/${p%.zst}" ;;
	*.gz) gzip -dc "$moddir/$p" >"$root/lib/modules/$kver/${p%.gz}" ;;
	*) cp "$moddir/$p" "$root/lib/modules/$kver/$p" ;;
	esac
done
# A modules.dep covering exactly what we copied, decompressed names.
for p in $want; do
	grep -E "^$p:" "$moddir/modules.dep"
done | sed -E 's/\.ko\.(xz|zst|gz)/.ko/g' >"$root/lib/modules/$kver/modules.dep"

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -6 >"$work/initrd.img"
cp "$kernel" "$work/vmlinuz"
echo "console=ttyS0 quiet panic=-1 kumo.guest=1" >"$work/cmdline"
if command -v qemu-img >/dev/null; then
	qemu-img create -q -f qcow2 "$work/disk.qcow2" 64M
	mv "$work/disk.qcow2" "$out/disk.qcow2"
fi
mv "$work/initrd.img" "$out/initrd.img"
mv "$work/vmlinuz" "$out/vmlinuz"
mv "$work/cmdline" "$out/cmdline"
echo "$stamp" >"$out/stamp"
echo "guest-image: built $out ($kver, initrd $(du -k "$out/initrd.img" | cut -f1) KiB)"
