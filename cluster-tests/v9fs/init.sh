#!/bin/busybox sh
# /init of the kernel-mount test VM: load the 9p modules, mount the server
# named on the kernel command line (jobd.port, jobd.version, jobd.opts) from
# the host (10.0.2.2 under QEMU user networking) on /mnt, run /test.sh, and
# print its exit status as JOBD-V9FS-EXIT=N before powering off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
port=5640 version=default opts=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    jobd.port=*) port=${arg#jobd.port=} ;;
    jobd.version=*) version=${arg#jobd.version=} ;;
    jobd.opts=*) opts=${arg#jobd.opts=} ;;
  esac
done
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover \
         net_failover virtio_net netfs fscache 9pnet 9pnet_fd 9p; do
  insmod /lib/modules/$m.ko || echo "insmod $m failed"
done
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
o="trans=tcp,port=$port"
[ "$version" != default ] && o="$o,version=$version"
[ -n "$opts" ] && o="$o,$opts"
if mount -t 9p -o "$o" 10.0.2.2 /mnt; then
  echo JOBD-V9FS-BEGIN
  (cd /mnt && sh /test.sh 2>&1)
  rc=$?
  echo JOBD-V9FS-END
  umount /mnt
else
  echo "JOBD-V9FS-MOUNT-FAILED ($o)"
  dmesg | grep -i 9p | tail -n 10
  rc=254
fi
echo "JOBD-V9FS-EXIT=$rc"
reboot -f
