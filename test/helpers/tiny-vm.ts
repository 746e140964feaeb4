// A tiny guest that really boots and really answers SSH, in seconds under TCG: an MBR disk with
// extlinux, the host's Debian kernel with a 5 MB initramfs of our own (only the virtio and ext4
// drivers, instead of the host's 35 MB one that probes everything), busybox as the whole userland,
// DHCP on QEMU's user network, and dropbear (the host's binary and its libraries) with the set's
// public key as root's authorized key. What `vm create` needs of an image: it boots from its own
// disk and accepts a root login with the set's key. The real Debian image is the end-to-end test's.
//
// Needs root (loop devices, mounts), busybox-static, extlinux, dropbear-bin and a kernel under
// /boot with its modules: scripts/install-deps --test installs them.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { attachDisk, mountRoot } from '../../src/builder/disk.js';
import { pinKeyFileTime } from '../../src/builder/root-key.js';
import type { LayerManifest } from '../../src/records/build.js';
import { imageFileName, sshKeyFileName } from '../../src/definitions/naming.js';
import type { BuildRecord } from '../../src/records/build.js';
import type { Store } from '../../src/store/store.js';
import { withScope } from '../../src/core/scope.js';
import { mkfsExt4 } from '../../src/tools/e2fsprogs.js';
import * as qemuImg from '../../src/tools/qemu-img.js';

/** The disk is 128 MiB; its one partition ends at 96 MiB, so layers can differ above that. */
export const TINY_DISK_BYTES = 128 * 1024 ** 2;
const PARTITION = 'label: dos\nstart=2048, size=194560, type=83, bootable\n';
/** Where a test layer may write without touching the guest's file system (MiB). */
export const FREE_AREA_MIB = 100;

function need(file: string, pkg: string): string {
  if (!existsSync(file)) throw new Error(`the tiny test guest needs ${file}: install ${pkg} (scripts/install-deps --test)`);
  return file;
}

/** The newest kernel under /boot whose modules are installed. */
function hostKernel(): { kernel: string; modules: string } {
  const versions = readdirSync('/boot')
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length))
    .filter((v) => existsSync(`/lib/modules/${v}/kernel`))
    .sort();
  const v = versions[versions.length - 1];
  if (!v) throw new Error('the tiny test guest needs a kernel under /boot with its modules in /lib/modules: install linux-image-amd64');
  return { kernel: `/boot/vmlinuz-${v}`, modules: `/lib/modules/${v}/kernel` };
}

// Load order matters (insmod has no dependency resolution): each after what it needs.
const MODULES = [
  'lib/crc16', 'fs/mbcache', 'fs/jbd2/jbd2', 'crypto/crc32c_generic', 'fs/ext4/ext4',
  'drivers/virtio/virtio_ring', 'drivers/virtio/virtio', 'drivers/virtio/virtio_pci_legacy_dev', 'drivers/virtio/virtio_pci_modern_dev', 'drivers/virtio/virtio_pci',
  'drivers/block/virtio_blk', 'net/core/failover', 'drivers/net/net_failover', 'drivers/net/virtio_net',
];

const INIT = `#!/bin/busybox sh
# Load the drivers of a virtio disk, an ext4 root and a virtio NIC, mount the root, switch to it.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
for m in $(/bin/busybox cat /modules); do /bin/busybox insmod /m/$m; done
i=0
while [ ! -b /dev/vda1 ] && [ $i -lt 600 ]; do /bin/busybox usleep 100000; i=$((i+1)); done
/bin/busybox mount -t ext4 /dev/vda1 /newroot || { echo "tiny initramfs: cannot mount /dev/vda1"; exec /bin/busybox sh; }
/bin/busybox umount /proc
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /sbin/init
`;

/** A cpio (newc) archive the kernel unpacks as its first root (uncompressed: nothing to decompress under TCG). */
function makeInitramfs(work: string, modulesDir: string, out: string): void {
  const dir = path.join(work, 'initramfs');
  for (const d of ['bin', 'm', 'dev', 'proc', 'sys', 'newroot']) mkdirSync(path.join(dir, d), { recursive: true });
  copyFileSync(need('/bin/busybox', 'busybox-static'), path.join(dir, 'bin', 'busybox'));
  chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  for (const m of MODULES) copyFileSync(path.join(modulesDir, `${m}.ko`), path.join(dir, 'm', `${path.basename(m)}.ko`));
  writeFileSync(path.join(dir, 'modules'), `${MODULES.map((m) => `${path.basename(m)}.ko`).join('\n')}\n`);
  writeFileSync(path.join(dir, 'init'), INIT, { mode: 0o755 });
  const files = execFileSync('find', ['.'], { cwd: dir, encoding: 'utf8' });
  writeFileSync(out, execFileSync('/bin/busybox', ['cpio', '-o', '-H', 'newc'], { cwd: dir, input: files, stdio: ['pipe', 'pipe', 'ignore'], maxBuffer: 64 * 1024 ** 2 }));
}

const RCS = `#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
hostname "$(cat /etc/hostname)"
ip link set lo up
for n in /sys/class/net/*; do
  n=\${n##*/}; [ "$n" = lo ] && continue
  ip link set "$n" up && udhcpc -q -n -t 10 -i "$n" -s /etc/udhcpc.script
done
dropbear -R -E
echo "tiny guest: sshd started"
`;

/** A guest that boots and powers off without ever starting sshd: a VM that does not come up. */
const RCS_POWEROFF = `#!/bin/sh
mount -t proc proc /proc
echo "tiny guest: no sshd here, powering off"
poweroff -f
`;

const UDHCPC = `#!/bin/sh
case "$1" in bound|renew) ip addr add "$ip/\${mask:-24}" dev "$interface"; [ -n "$router" ] && ip route add default via "\${router%% *}";; esac
exit 0
`;

/** The host's dropbear and the shared libraries it loads, copied into `root`. */
function copyDropbear(root: string): void {
  const bin = need('/usr/sbin/dropbear', 'dropbear-bin');
  const libs = execFileSync('ldd', [bin], { encoding: 'utf8' }).match(/\/[^\s]+\.so[^\s]*/g) ?? [];
  for (const lib of new Set(libs)) {
    mkdirSync(path.join(root, path.dirname(lib)), { recursive: true });
    copyFileSync(lib, path.join(root, lib));
  }
  copyFileSync(bin, path.join(root, 'usr', 'sbin', 'dropbear'));
  chmodSync(path.join(root, 'usr', 'sbin', 'dropbear'), 0o755);
}

/**
 * Makes `image`: a bootable tiny guest whose root accepts `authorizedKey` (an OpenSSH public key
 * line) and whose host name is `hostname`. `poweroff`: it boots, says so and powers off instead.
 * `buildable`: the chroot backend can build layers on it (a stub apt-get for the clean-up, the
 * apt lists directory it empties; the package list is then simply not recorded).
 */
export async function makeBootableTinyDisk(image: string, work: string, opts: { authorizedKey: string; hostname: string; poweroff?: boolean; buildable?: boolean }): Promise<void> {
  const { kernel, modules } = hostKernel();
  // Debian's extlinux, Fedora/EL's syslinux-extlinux.
  const mbr = ['/usr/lib/EXTLINUX/mbr.bin', '/usr/share/syslinux/mbr.bin'].find((f) => existsSync(f)) ?? need('/usr/lib/EXTLINUX/mbr.bin', 'extlinux');
  need('/usr/bin/extlinux', 'extlinux');
  mkdirSync(work, { recursive: true });
  await qemuImg.create(image, { size: TINY_DISK_BYTES });
  await withScope(async (scope) => {
    const disk = await attachDisk(scope, image, work, PARTITION);
    await mkfsExt4(disk.partitions[0]!, 'root');
    const root = await mountRoot(scope, disk.partitions[0]!, work);
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc/init.d', 'etc/dropbear', 'root/.ssh', 'proc', 'sys', 'dev', 'run', 'var/log', 'boot/extlinux']) mkdirSync(path.join(root, d), { recursive: true });
    mkdirSync(path.join(root, 'tmp'), { mode: 0o1777 });
    copyFileSync('/bin/busybox', path.join(root, 'bin', 'busybox'));
    chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
    execFileSync('chroot', [root, '/bin/busybox', '--install', '-s']);
    copyDropbear(root);
    copyFileSync(kernel, path.join(root, 'boot', 'vmlinuz'));
    makeInitramfs(work, modules, path.join(root, 'boot', 'initrd.img'));
    writeFileSync(
      path.join(root, 'boot', 'extlinux', 'extlinux.conf'),
      'DEFAULT linux\nTIMEOUT 0\nLABEL linux\n  KERNEL /boot/vmlinuz\n  INITRD /boot/initrd.img\n  APPEND root=/dev/vda1 rw console=ttyS0 panic=-1 quiet\n',
    );
    writeFileSync(path.join(root, 'etc', 'inittab'), '::sysinit:/etc/init.d/rcS\nttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100\n');
    writeFileSync(path.join(root, 'etc', 'init.d', 'rcS'), opts.poweroff ? RCS_POWEROFF : RCS, { mode: 0o755 });
    writeFileSync(path.join(root, 'etc', 'udhcpc.script'), UDHCPC, { mode: 0o755 });
    writeFileSync(path.join(root, 'etc', 'hostname'), `${opts.hostname}\n`);
    writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\n');
    writeFileSync(path.join(root, 'etc', 'shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o600 });
    writeFileSync(path.join(root, 'etc', 'shells'), '/bin/sh\n');
    chmodSync(path.join(root, 'root', '.ssh'), 0o700);
    writeFileSync(path.join(root, 'root', '.ssh', 'authorized_keys'), `${opts.authorizedKey.trim()}\n`, { mode: 0o600 });
    symlinkSync('/proc/mounts', path.join(root, 'etc', 'mtab'));
    if (opts.buildable) {
      mkdirSync(path.join(root, 'var', 'lib', 'apt', 'lists'), { recursive: true });
      writeFileSync(path.join(root, 'usr', 'bin', 'apt-get'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    }
    // extlinux reads the partition's offset from the (partx-made) partition device; the MBR code
    // chain-loads the active partition's boot sector extlinux wrote.
    execFileSync('extlinux', ['--install', path.join(root, 'boot', 'extlinux')], { stdio: 'ignore' });
    execFileSync('dd', [`if=${mbr}`, `of=${disk.loop}`, 'bs=440', 'count=1', 'conv=notrunc', 'status=none']);
  });
}

/** An OpenSSH key pair (ed25519, no passphrase) at `file` and `file.pub`; returns the public line. */
export function makeKeyPair(file: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ost-images-test', '-f', file]);
  return execFileSync('cat', [`${file}.pub`], { encoding: 'utf8' });
}

/** Writes `pattern` over 1 MiB above the guest's file system: makes a layer differ, boots the same. */
export function writeFreeArea(image: string, pattern: number): void {
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P ${pattern} ${FREE_AREA_MIB}M 1M`, image], { stdio: 'ignore' });
}

// An installed tree as the layer packages leave it on a test machine (docs/test-machines.md):
// build files `<set>-<layer>-<V>-<R>.qcow2` (0444) side by side, each upper one naming its parent by
// relative file name, a `.build.json` record beside each, stable names `<set>-<layer>.qcow2` as
// relative symlinks, and the set's key pair `<set>_id_rsa` (+ .pub). Made by hand here, so the vm
// tests do not depend on packaging; the packaging tests check that rpm makes the same tree.

export interface TreeBuild {
  set: string;
  layer: string;
  version: string;
  release: string;
  /** Absolute path of the build file. */
  file: string;
}

/** Installs one build: a copy of `from` (a base), or an overlay on `parent` that differs by `pattern`. */
export async function installBuild(dir: string, set: string, layer: string, release: string, src: { from: string } | { parent: TreeBuild; pattern: number }): Promise<TreeBuild> {
  mkdirSync(dir, { recursive: true });
  const version = '12';
  const name = `${set}-${layer}-${version}-${release}.qcow2`;
  const file = path.join(dir, name);
  if ('from' in src) copyFileSync(src.from, file);
  else {
    await qemuImg.create(file, { backing: path.basename(src.parent.file) });
    writeFreeArea(file, src.pattern);
  }
  chmodSync(file, 0o444);
  const record = {
    schema: 1, set, layer, version, release, image: name,
    parent: 'parent' in src ? { layer: src.parent.layer, version: src.parent.version, release: src.parent.release, image: path.basename(src.parent.file) } : undefined,
    backend: 'test', builtAt: new Date().toISOString(), seconds: 0, virtualSize: TINY_DISK_BYTES, allocatedSize: 0,
  };
  writeFileSync(file.replace(/\.qcow2$/, '.build.json'), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o444 });
  return { set, layer, version, release, file };
}

/** Points `<set>-<layer>.qcow2` at a build, atomically (a new link renamed over the old), as the scriptlets do. */
export function pointStable(dir: string, b: TreeBuild): string {
  const stable = path.join(dir, `${b.set}-${b.layer}.qcow2`);
  const tmp = path.join(dir, `.${b.set}-${b.layer}.qcow2.tmp`);
  execFileSync('ln', ['-sfn', path.basename(b.file), tmp]);
  execFileSync('mv', ['-T', tmp, stable]);
  return stable;
}

/** The set's key pair under its stable names. */
export function installKey(dir: string, set: string, keyFile: string): string {
  const key = path.join(dir, `${set}_id_rsa`);
  copyFileSync(keyFile, key);
  chmodSync(key, 0o600);
  copyFileSync(`${keyFile}.pub`, `${key}.pub`);
  return key;
}

/**
 * Records a build in a builder's store as `ost-images build` leaves it: a base copied from a tiny
 * disk with the set's key pair beside it, or an overlay on `parent` that differs by `pattern`.
 * Packaged with the real packaging code, it installs the tree a test machine gets.
 */
export async function storeBuild(
  store: Store,
  set: string,
  layer: string,
  release: string,
  src: { from: string; keyFile: string } | { parent: BuildRecord; pattern: number },
  keyed?: { key: string; manifest: LayerManifest },
): Promise<BuildRecord> {
  store.ensure(set);
  const id = { version: '12', release };
  const image = imageFileName(set, layer, id);
  const full = store.imagePath(set, image);
  let sshKey: BuildRecord['sshKey'];
  if ('from' in src) {
    copyFileSync(src.from, full);
    const key = sshKeyFileName(set, layer, id);
    copyFileSync(src.keyFile, store.imagePath(set, key));
    chmodSync(store.imagePath(set, key), 0o600);
    copyFileSync(`${src.keyFile}.pub`, store.imagePath(set, `${key}.pub`));
    // As a real base build does: every build ships the set's key with one mtime (rpm -V compares it).
    pinKeyFileTime(store.imagePath(set, key));
    pinKeyFileTime(store.imagePath(set, `${key}.pub`));
    sshKey = { private: key, public: `${key}.pub` };
  } else {
    await qemuImg.create(full, { backing: src.parent.image });
    writeFreeArea(full, src.pattern);
  }
  chmodSync(full, 0o444);
  const rec: BuildRecord = {
    schema: 1, set, layer, ...id, image, ...keyed,
    parent: 'parent' in src ? { layer: src.parent.layer, version: src.parent.version, release: src.parent.release, image: src.parent.image } : undefined,
    sshKey, backend: 'test', builtAt: new Date().toISOString(), seconds: 0, virtualSize: TINY_DISK_BYTES, allocatedSize: 0,
  };
  store.commit(rec);
  return rec;
}
