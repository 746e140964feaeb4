// Makes a base layer, one of three ways:
// - mmdebstrap: a scratch raw disk, one MBR partition, ext4, mmdebstrap straight into it, then
//   what turns a chroot into a bootable VM: fstab, GRUB on the disk with a serial console, DHCP
//   networking, the root SSH key; then sealed (seal.ts) and repacked into the layer's qcow2 in a
//   fixed order (repack.ts): the same inputs give the same bytes. Disk id, file system UUID and
//   hash seed come from the layer's key, every time from its SOURCE_DATE_EPOCH;
// - image: a distribution's cloud image (downloaded, verified, cached), converted to the set's
//   size with its root partition and file system grown, then the root key, host name, empty
//   machine-id and cloud-init switched off (no datasource: it would wait minutes at every boot);
// - kickstart: an installer ISO run unattended under QEMU (kickstart.ts).
// Every base is sealed (seal.ts: no host keys, logs or seeds; times clamped; a first-boot unit
// makes the per-machine keys), so its file tree is reproducible; only the mmdebstrap one is
// repacked, because only its whole file system is made here.
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BaseContext } from './base-context.js';
import type { ImageBase, LayerDef, MmdebstrapBase, SetDef } from '../definitions/types.js';
import { StepError } from '../core/errors.js';
import { checkInterrupted } from '../core/interrupt.js';
import { log } from '../core/log.js';
import { withScope } from '../core/scope.js';
import { inChroot } from '../tools/chroot.js';
import { mmdebstrap } from '../tools/mmdebstrap.js';
import { fsType, growPartition, growXfs, partitionTable } from '../tools/mount.js';
import { growExt, mkfsExt4 } from '../tools/e2fsprogs.js';
import * as qemuImg from '../tools/qemu-img.js';
import { baseSeeds } from '../plan/epoch.js';
import { prepareChroot } from './chroot-env.js';
import { attachDisk, attachRawDisk, chrootDevices, mountRoot } from './disk.js';
import { repackBase } from './repack.js';
import { sealTree } from './seal.js';
import { guestEnv, listGuestPackages, runStepsInChroot } from './steps.js';
import { expectedSha256, fetchCached } from './download.js';
import { buildKickstartBase } from './kickstart.js';


/** One MBR partition from 1 MiB to the end, bootable, type Linux; the disk id from the key. */
export function rootPartitionScript(diskId: string): string {
  return `label: dos\nlabel-id: ${diskId}\nstart=2048, type=83, bootable\n`;
}

const SERIAL = ['console=tty0', 'console=ttyS0,115200n8'];

/** Files written into the new system, as [path, content, mode]. Pure, so it is unit-tested. */
export function baseFiles(set: SetDef, layer: LayerDef, rootUuid: string, sshPublicKey: string): [string, string, number][] {
  const base = layer.base as MmdebstrapBase;
  const cmdline = [...SERIAL, ...base.kernelCmdline].join(' ');
  return [
    ['/etc/fstab', `# Written by ost-images\nUUID=${rootUuid} / ext4 errors=remount-ro 0 1\n`, 0o644],
    ['/etc/hostname', `${base.hostname}\n`, 0o644],
    ['/etc/hosts', `127.0.0.1 localhost\n127.0.1.1 ${base.hostname}\n::1 localhost ip6-localhost ip6-loopback\n`, 0o644],
    ['/etc/systemd/network/80-ost-images-dhcp.network', '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n', 0o644],
    [
      '/etc/default/grub.d/50-ost-images.cfg',
      [
        '# Serial console first so test-boot and virsh console see the boot; no menu delay.',
        `GRUB_CMDLINE_LINUX="${cmdline}"`,
        'GRUB_CMDLINE_LINUX_DEFAULT=""',
        'GRUB_TERMINAL="serial console"',
        'GRUB_SERIAL_COMMAND="serial --speed=115200"',
        'GRUB_TIMEOUT=1',
        '',
      ].join('\n'),
      0o644,
    ],
    // Same behaviour for both backends and for later users of the image: no recommends.
    ['/etc/apt/apt.conf.d/90ost-images', 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n', 0o644],
    ['/root/.ssh/authorized_keys', sshPublicKey.endsWith('\n') ? sshPublicKey : `${sshPublicKey}\n`, 0o600],
  ];
}

function writeGuestFile(root: string, file: string, content: string, mode: number): void {
  const full = path.join(root, file);
  mkdirSync(path.dirname(full), { recursive: true });
  writeFileSync(full, content, { mode });
  chmodSync(full, mode);
}

/** Builds the base layer into ctx.image; resolves to the guest's package list. */
export async function buildBase(ctx: BaseContext): Promise<string | undefined> {
  const base = ctx.layer.base!;
  switch (base.method) {
    case 'mmdebstrap':
      return buildMmdebstrapBase(ctx, base);
    case 'image':
      return buildImageBase(ctx, base);
    case 'kickstart':
      return buildKickstartBase(ctx, base);
  }
}

async function buildMmdebstrapBase(ctx: BaseContext, base: MmdebstrapBase): Promise<string | undefined> {
  const { set, layer } = ctx;
  if (!set.distro.mirror) throw new StepError(`${set.file}: distro.mirror is needed to build base layer '${layer.name}'`);
  const seeds = baseSeeds(ctx.key);
  const id = { uuid: seeds.fsUuid, hashSeed: seeds.hashSeed };
  const env = guestEnv(ctx.epoch);
  const debugLine = (l: string) => log.debug(`  | ${l}`);
  return withScope(async (scope) => {
    const disk = await attachRawDisk(scope, path.join(ctx.work, 'pass1.raw'), set.image.sizeBytes, rootPartitionScript(seeds.diskId));
    const part = disk.partitions[0];
    if (!part) throw new StepError(`no partition device appeared for ${disk.loop}`);
    await mkfsExt4(part, 'root', { id, epoch: ctx.epoch });
    const root = await mountRoot(scope, part, ctx.work);
    const listText = await withScope(async (guest) => {
      log.info(`${layer.name}: mmdebstrap ${base.suites.join(',')} (${base.variant}, ${base.packages.length} extra packages)`);
      await mmdebstrap(base, root, set.distro.mirror!, { env, onLine: (l) => (l.startsWith('I: ') ? log.info(`${layer.name}:   ${l.slice(3)}`) : debugLine(l)) });
      checkInterrupted();
      // mmdebstrap copies the build host's resolver configuration in: no image carries that.
      rmSync(path.join(root, 'etc', 'resolv.conf'), { force: true });
      await prepareChroot(guest, root, await chrootDevices(disk, part));
      for (const [file, content, mode] of baseFiles(set, layer, seeds.fsUuid, ctx.sshPublicKey)) writeGuestFile(root, file, content, mode);
      chmodSync(path.join(root, 'root', '.ssh'), 0o700);
      log.info(`${layer.name}: bootloader and first-boot configuration`);
      await inChroot(root, ['systemctl', 'enable', 'systemd-networkd.service'], { env });
      await inChroot(root, ['grub-install', '--target=i386-pc', disk.loop], { env, onLine: debugLine });
      await inChroot(root, ['update-grub'], { env, onLine: debugLine });
      const grubCfg = readFileSync(path.join(root, 'boot', 'grub', 'grub.cfg'), 'utf8');
      if (!grubCfg.includes(`root=UUID=${seeds.fsUuid}`)) {
        throw new StepError(`grub.cfg does not boot root=UUID=${seeds.fsUuid}; the image would only boot on this host's device names`);
      }
      await runStepsInChroot(root, set.distro.family, layer.steps, layer.name, ctx.epoch);
      return listGuestPackages(root, set.distro.family, layer.name);
    });
    await sealTree(root, { layer: layer.name, epoch: ctx.epoch, firstBoot: true });
    await repackBase({ layer: layer.name, disk, root, image: ctx.image, sizeBytes: set.image.sizeBytes, id, epoch: ctx.epoch, work: ctx.work });
    return listText;
  });
}

/** The root partition of a cloud image: the only one, or the last (where layouts put the root). */
function imageRoot(partitions: { node: string }[]): number {
  if (partitions.length === 0) throw new StepError('the image has no partition table; a whole-disk file system is not supported');
  return partitions.length;
}

async function buildImageBase(ctx: BaseContext, base: ImageBase): Promise<string | undefined> {
  const { set, layer } = ctx;
  const sha = await expectedSha256(base);
  const { file } = await fetchCached(base.url, sha, ctx.downloads);
  checkInterrupted();
  log.info(`${layer.name}: converting ${path.basename(base.url)} to qcow2`);
  await qemuImg.convertTo(file, base.format, ctx.image);
  const size = (await qemuImg.info(ctx.image))['virtual-size'];
  if (size < set.image.sizeBytes) await qemuImg.resize(ctx.image, set.image.sizeBytes);
  else if (size > set.image.sizeBytes) log.warn(`${layer.name}: the image's disk (${size} bytes) is larger than the set's image.size; keeping it`);
  return withScope(async (scope) => {
    let rootIndex = 0;
    const disk = await attachDisk(scope, ctx.image, ctx.work, async (raw) => {
      const table = await partitionTable(raw);
      rootIndex = imageRoot(table.partitions);
      // The root partition grows to the end of the (now larger) disk.
      await growPartition(raw, rootIndex, table.label);
    });
    const part = disk.partitions[rootIndex - 1];
    if (!part) throw new StepError(`partition ${rootIndex} of ${disk.loop} did not appear`);
    const type = await fsType(part);
    if (type.startsWith('ext')) await growExt(part);
    const root = await mountRoot(scope, part, ctx.work);
    if (type === 'xfs') await growXfs(root);
    else if (!type.startsWith('ext')) log.warn(`${layer.name}: root file system ${type} is not grown (ext2/3/4 and xfs are)`);
    const listText = await withScope(async (guest) => {
      await prepareChroot(guest, root, await chrootDevices(disk, part));
      writeGuestFile(root, '/root/.ssh/authorized_keys', ctx.sshPublicKey.endsWith('\n') ? ctx.sshPublicKey : `${ctx.sshPublicKey}\n`, 0o600);
      chmodSync(path.join(root, 'root', '.ssh'), 0o700);
      writeGuestFile(root, '/etc/hostname', `${base.hostname}\n`, 0o644);
      // Without a datasource cloud-init waits at every boot; the image is configured here instead.
      writeGuestFile(root, '/etc/cloud/cloud-init.disabled', 'Disabled by ost-images: the image is configured at build time.\n', 0o644);
      await runStepsInChroot(root, set.distro.family, layer.steps, layer.name, ctx.epoch);
      return listGuestPackages(root, set.distro.family, layer.name);
    });
    await sealTree(root, { layer: layer.name, epoch: ctx.epoch, firstBoot: true });
    return listText;
  });
}
