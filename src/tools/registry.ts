// Every host program the toolchain starts, with why it is needed and where it comes from, so a
// missing binary produces an actionable message instead of ENOENT.

export interface ToolInfo {
  /** What the program is used for, in words a user understands. */
  why: string;
  /** Debian/Ubuntu package that ships it. */
  debian: string;
  /** Fedora/EL package that ships it. */
  fedora: string;
}

export const TOOLS = {
  'qemu-img': { why: 'creating, checking and inspecting qcow2 layers', debian: 'qemu-utils', fedora: 'qemu-img' },
  'qemu-storage-daemon': { why: 'exposing a qcow2 overlay as a raw file for the chroot backend', debian: 'qemu-utils', fedora: 'qemu-storage-daemon' },
  'qemu-system-x86_64': { why: 'booting images (test-boot, KVM probe)', debian: 'qemu-system-x86', fedora: 'qemu-system-x86-core' },
  'virt-customize': { why: 'the guestfs customization backend', debian: 'libguestfs-tools', fedora: 'guestfs-tools' },
  mmdebstrap: { why: 'installing a Debian base system', debian: 'mmdebstrap', fedora: 'mmdebstrap' },
  rpmbuild: { why: 'packaging layers as RPMs', debian: 'rpm', fedora: 'rpm-build' },
  rpm: { why: 'reading package headers', debian: 'rpm', fedora: 'rpm' },
  createrepo_c: { why: 'generating DNF repository metadata', debian: 'createrepo-c', fedora: 'createrepo_c' },
  dnf: { why: 'installing layer packages from a repository', debian: 'dnf', fedora: 'dnf' },
  rpmsign: { why: 'signing published packages', debian: 'rpm', fedora: 'rpm-sign' },
  gpg: { why: 'signing repository metadata and exporting the public key', debian: 'gnupg', fedora: 'gnupg2' },
  sfdisk: { why: 'partitioning the base disk', debian: 'fdisk', fedora: 'util-linux' },
  losetup: { why: 'attaching images as loop devices (chroot backend)', debian: 'mount', fedora: 'util-linux' },
  partx: { why: 'registering partitions of a loop device where udev does not', debian: 'util-linux', fedora: 'util-linux' },
  mount: { why: 'mounting guest filesystems (chroot backend)', debian: 'mount', fedora: 'util-linux' },
  umount: { why: 'unmounting guest filesystems (chroot backend)', debian: 'mount', fedora: 'util-linux' },
  fstrim: { why: 'returning freed blocks so an overlay holds only what its layer changed', debian: 'util-linux', fedora: 'util-linux' },
  mke2fs: { why: 'creating the base root filesystem, filled from the built tree in a fixed order', debian: 'e2fsprogs', fedora: 'e2fsprogs' },
  debugfs: { why: "setting the times of a base's inodes to the layer's SOURCE_DATE_EPOCH", debian: 'e2fsprogs', fedora: 'e2fsprogs' },
  lsattr: { why: 'finding immutable files whose time a layer build sets', debian: 'e2fsprogs', fedora: 'e2fsprogs' },
  chattr: { why: 'setting the time of an immutable file in a layer (the flag is lifted for that moment)', debian: 'e2fsprogs', fedora: 'e2fsprogs' },
  dumpe2fs: { why: "listing a base file system's inodes in use", debian: 'e2fsprogs', fedora: 'e2fsprogs' },
  e2fsck: { why: 'checking an image base\'s ext4 root before growing it', debian: 'e2fsprogs', fedora: 'e2fsprogs' },
  resize2fs: { why: 'growing an image base\'s ext4 root to the set\'s size', debian: 'e2fsprogs', fedora: 'e2fsprogs' },
  xfs_growfs: { why: 'growing an image base\'s XFS root (Enterprise Linux cloud images) to the set\'s size', debian: 'xfsprogs', fedora: 'xfsprogs' },
  blkid: { why: 'reading filesystem UUIDs for fstab and the bootloader', debian: 'util-linux', fedora: 'util-linux' },
  chroot: { why: 'running the guest package manager natively (chroot backend)', debian: 'coreutils', fedora: 'coreutils' },
  xorriso: { why: 'reading installer ISOs and making the kickstart volume (kickstart bases)', debian: 'xorriso', fedora: 'xorriso' },
  'ssh-keygen': { why: 'creating the root SSH key pair of the base image', debian: 'openssh-client', fedora: 'openssh-clients' },
  // The client only; the VMs run under libvirtd and virtlogd (libvirt-daemon-system / libvirt-daemon-kvm).
  virsh: { why: 'defining, starting and stopping VMs through libvirt (ost-images vm)', debian: 'libvirt-clients', fedora: 'libvirt-client' },
  rsync: { why: 'pushing the served snapshot to mirrors (ost-images mirror)', debian: 'rsync', fedora: 'rsync' },
} as const satisfies Record<string, ToolInfo>;


// Programs used only in small supporting roles.
export const EXTRA_TOOLS = {
  mknod: { why: 'creating the device nodes of a chroot /dev', debian: 'coreutils', fedora: 'coreutils' },
  'virt-cat': { why: 'reading the package list out of an image (guestfs backend)', debian: 'libguestfs-tools', fedora: 'guestfs-tools' },
  'virt-sparsify': { why: 'trimming freed blocks after guestfs customization', debian: 'libguestfs-tools', fedora: 'guestfs-tools' },
  ssh: { why: 'logging in to a booted image (test-boot, ost-images vm)', debian: 'openssh-client', fedora: 'openssh-clients' },
  sync: { why: 'flushing a guest file system before fstrim', debian: 'coreutils', fedora: 'coreutils' },
  sh: { why: "running the site's upload command into staging (OST_IMAGES_UPLOAD)", debian: 'dash', fedora: 'bash' },
} as const satisfies Record<string, ToolInfo>;

export const ALL_TOOLS: Record<string, ToolInfo> = { ...TOOLS, ...EXTRA_TOOLS };
export type ToolName = keyof typeof TOOLS | keyof typeof EXTRA_TOOLS;
