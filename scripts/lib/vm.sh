# shellcheck shell=bash
# What the scripts that boot the appliance image under qemu share (scripts/image-smoke,
# scripts/vm-gpio, scripts/power-cut): the qemu command line for an image built by image/build,
# and reading the data partition back from the disk image afterwards without mounting it.
# Sourced, not run.

# vm_qemu ARCH OUT DISK MEM: sets the array VM_QEMU to the qemu command that boots the image in
# OUT (vmlinuz, initrd.img from image/build) from DISK (a copy of OUT/sdcard.img) with MEM MiB,
# TCG (no KVM on the build machines), the serial console on stdout, user networking (the
# host's loopback is 10.0.2.2 in the VM), -no-reboot (a reboot or the watchdog's reset ends
# qemu). Also sets VM_DATA_PART, the data partition's number. The root is mounted read-only.
vm_qemu() {
  local arch=$1 out=$2 disk=$3 mem=$4 console
  case "$arch" in
    arm64) VM_QEMU=(qemu-system-aarch64 -M virt -cpu cortex-a72); console=ttyAMA0; VM_DATA_PART=3 ;;
    amd64) VM_QEMU=(qemu-system-x86_64 -M q35 -cpu max); console=ttyS0; VM_DATA_PART=2 ;;
    *) echo "vm_qemu: unknown architecture $arch" >&2; return 2 ;;
  esac
  VM_QEMU+=(-smp 2 -m "$mem" -nographic -no-reboot -accel tcg
    -kernel "$out/vmlinuz" -initrd "$out/initrd.img"
    -append "root=LABEL=RASPIROOT ro rootwait console=$console panic=-1 net.ifnames=0"
    -drive "file=$disk,format=raw,if=virtio"
    -netdev user,id=net0 -device virtio-net-pci,netdev=net0)
}

# vm_data_partition DISK PART DEST: copies partition PART of the disk image DISK to the file
# DEST (sparse), for debugfs.
vm_data_partition() {
  local disk=$1 part=$2 dest=$3 start size
  read -r start size < <(partx -g -o START,SECTORS -n "$part" "$disk")
  dd if="$disk" of="$dest" bs=512 skip="$start" count="$size" conv=sparse status=none
}

# vm_journal DATA_EXT4 WORKDIR DEST [journalctl output format]: the persistent journal from a
# data partition copy (/log/journal) as text in DEST.
vm_journal() {
  local data=$1 work=$2 dest=$3 format=${4:-short-monotonic}
  mkdir -p "$work/journal"
  debugfs -R "rdump /log/journal $work/journal" "$data" >/dev/null 2>&1 || true
  # rdump puts the directory itself under the destination: $work/journal/journal/<machine-id>/.
  journalctl -D "$work/journal/journal" --no-pager -o "$format" >"$dest" 2>/dev/null || true
}
