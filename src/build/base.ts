// Makes a base layer: an empty qcow2, one MBR partition, ext4, mmdebstrap straight into it, then
// what turns a chroot into a bootable VM: fstab, GRUB on the disk with a serial console, DHCP
// networking, the root SSH key, an empty machine-id (each VM makes its own on first boot).
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LayerDef, SetDef } from '../definitions/types.js';
import { StepError } from '../errors.js';
import { checkInterrupted } from '../interrupt.js';
import { log } from '../log.js';
import { withScope } from '../scope.js';
import { inChroot } from '../tools/chroot.js';
import { mmdebstrap } from '../tools/mmdebstrap.js';
import { SINGLE_ROOT_PARTITION, blkidUuid, mkfsExt4 } from '../tools/mount.js';
import * as qemuImg from '../tools/qemu-img.js';
import { prepareChroot } from './chroot-env.js';
import { attachDisk, chrootDevices, mountRoot } from './disk.js';
import { listGuestPackages, runStepsInChroot } from './steps.js';

export interface BaseContext {
  set: SetDef;
  layer: LayerDef;
  /** The partial image to create. */
  image: string;
  /** Public half of the root key pair, already generated. */
  sshPublicKey: string;
  work: string;
}

const SERIAL = ['console=tty0', 'console=ttyS0,115200n8'];

/** Files written into the new system, as [path, content, mode]. Pure, so it is unit-tested. */
export function baseFiles(set: SetDef, layer: LayerDef, rootUuid: string, sshPublicKey: string): [string, string, number][] {
  const base = layer.base!;
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

export async function buildBase(ctx: BaseContext): Promise<string | undefined> {
  const { set, layer } = ctx;
  const base = layer.base!;
  if (!set.distro.mirror) throw new StepError(`${set.file}: distro.mirror is needed to build base layer '${layer.name}'`);
  await qemuImg.create(ctx.image, { size: set.image.sizeBytes });
  return withScope(async (scope) => {
    const disk = await attachDisk(scope, ctx.image, ctx.work, SINGLE_ROOT_PARTITION);
    const part = disk.partitions[0];
    if (!part) throw new StepError(`no partition device appeared for ${disk.loop}`);
    await mkfsExt4(part, 'root');
    const uuid = await blkidUuid(part);
    const root = await mountRoot(scope, part, ctx.work);
    log.info(`${layer.name}: mmdebstrap ${base.suites.join(',')} (${base.variant}, ${base.packages.length} extra packages)`);
    await mmdebstrap(base, root, set.distro.mirror!, { onLine: (l) => (l.startsWith('I: ') ? log.info(`${layer.name}:   ${l.slice(3)}`) : log.debug(`  | ${l}`)) });
    checkInterrupted();
    await prepareChroot(scope, root, await chrootDevices(disk, part));
    for (const [file, content, mode] of baseFiles(set, layer, uuid, ctx.sshPublicKey)) writeGuestFile(root, file, content, mode);
    chmodSync(path.join(root, 'root', '.ssh'), 0o700);
    log.info(`${layer.name}: bootloader and first-boot configuration`);
    await inChroot(root, ['systemctl', 'enable', 'systemd-networkd.service']);
    await inChroot(root, ['grub-install', '--target=i386-pc', disk.loop], { onLine: (l) => log.debug(`  | ${l}`) });
    await inChroot(root, ['update-grub'], { onLine: (l) => log.debug(`  | ${l}`) });
    const grubCfg = readFileSync(path.join(root, 'boot', 'grub', 'grub.cfg'), 'utf8');
    if (!grubCfg.includes(`root=UUID=${uuid}`)) {
      throw new StepError(`grub.cfg does not boot root=UUID=${uuid}; the image would only boot on this host's device names`);
    }
    // Every VM made from this image must get its own machine-id on first boot.
    writeFileSync(path.join(root, 'etc', 'machine-id'), '');
    rmSync(path.join(root, 'var', 'lib', 'dbus', 'machine-id'), { force: true });
    await runStepsInChroot(root, set.distro.family, layer.steps, layer.name);
    return listGuestPackages(root, set.distro.family, layer.name);
  });
}
