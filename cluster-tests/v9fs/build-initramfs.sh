#!/bin/bash
# Builds what the kernel-mount tests boot: Debian's generic kernel and an
# initramfs holding busybox, the 9p and NIC modules, and init.sh as /init.
#   build-initramfs.sh OUTDIR
# Idempotent (an existing OUTDIR/ready is kept) and serialised with flock, so
# concurrent tests share one build. Needs: qemu-system-x86, busybox-static,
# and apt access to download (never install) the kernel package.
set -euo pipefail
OUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
[ -e "$OUT/ready" ] && exit 0
cd "$OUT"
# The -cloud- kernel flavour has no 9p; linux-image-amd64 points at the generic one.
pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
[ -n "$pkg" ] || { echo "cannot find the kernel package behind linux-image-amd64" >&2; exit 1; }
ls "$pkg"_*.deb >/dev/null 2>&1 || apt-get download "$pkg" 2>/dev/null
rm -rf unpacked root && mkdir unpacked
dpkg-deb -x "$(ls "$pkg"_*.deb | head -n1)" unpacked
kver=$(ls unpacked/lib/modules | head -n1)
mkdir -p root/bin root/lib/modules root/mnt root/proc root/sys root/dev
cp /bin/busybox root/bin/busybox
mods=unpacked/lib/modules/$kver/kernel
for m in drivers/virtio/virtio drivers/virtio/virtio_ring drivers/virtio/virtio_pci_modern_dev \
         drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/core/failover \
         drivers/net/net_failover drivers/net/virtio_net fs/netfs/netfs fs/fscache/fscache \
         net/9p/9pnet net/9p/9pnet_fd fs/9p/9p; do
  f=$(ls "$mods/$m".ko* | head -n1)
  case "$f" in
    *.xz) xz -dc "$f" ;;
    *.zst) zstd -dc "$f" ;;
    *) cat "$f" ;;
  esac > "root/lib/modules/$(basename "$m").ko"
done
cp "$HERE/init.sh" root/init
chmod +x root/init
(cd root && find . | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null | gzip -1) > base.cpio.gz
# QEMU can boot the uncompressed ELF kernel directly (PVH entry), which
# skips a decompression that costs seconds under software emulation.
vmlinuz=unpacked/boot/vmlinuz-$kver
off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -n1 | cut -d: -f1)
# (tail may die of SIGPIPE once xz has its one stream: check the result instead.)
tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream > vmlinux || true
[ "$(head -c 4 vmlinux | od -An -c | tr -d ' ')" = 177ELF ] || { echo "could not unpack $vmlinuz" >&2; exit 1; }
rm -rf unpacked root
touch ready
echo "v9fs: kernel $kver ready in $OUT"
