// Attaches a qcow2 image to the host as a block device and mounts its root file system:
//   qemu-storage-daemon (FUSE export of the qcow2 as a raw file) -> loop device -> partitions -> mount
// Each resource is registered with the Scope the moment it exists, so every exit path (success,
// failure, SIGINT, SIGTERM) releases them in reverse order. fstrim runs before the unmount so the
// overlay keeps only the clusters this layer really changed.
import { mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Scope } from '../core/scope.js';
import { StepError } from '../core/errors.js';
import { log } from '../core/log.js';
import * as losetup from '../tools/losetup.js';
import { blkidUuid, fsType, fstrim, mount, partition, umount } from '../tools/mount.js';
import type { ChrootOptions } from './chroot-env.js';
import * as qsd from '../tools/qemu-storage-daemon.js';
import { killProcessesUnder } from './processes.js';

export interface AttachedDisk {
  raw: string;
  loop: string;
  partitions: string[];
}

/**
 * Exposes `image` as a loop device. With `partitionScript`, the (new, empty) disk is partitioned
 * with sfdisk before the loop device is made; a function instead gets the raw file to change the
 * partition table itself (growing a cloud image's root partition).
 */
export async function attachDisk(scope: Scope, image: string, work: string, partitionScript?: string | ((raw: string) => Promise<void>)): Promise<AttachedDisk> {
  const raw = path.join(work, 'disk.raw');
  const pidfile = path.join(work, 'qsd.pid');
  writeFileSync(raw, '');
  const pid = await qsd.startFuseExport(image, raw, pidfile);
  scope.defer(`qemu-storage-daemon ${pid}`, () => qsd.stop(pid, raw));
  if (typeof partitionScript === 'string') await partition(raw, partitionScript);
  else if (partitionScript) await partitionScript(raw);
  const loop = await losetup.attach(raw);
  scope.defer(`loop device ${loop}`, () => losetup.detach(loop));
  const partitions = await losetup.partitions(loop);
  log.debug(`attached ${image} as ${loop} (${partitions.join(', ') || 'no partitions'})`);
  return { raw, loop, partitions };
}

/**
 * An image and its backing chain attached read-only and its root file system (the last
 * partition: where every base puts it) mounted read-only under `work`, for reading what the image
 * holds (comparing builds): nothing is written, not even a journal replay.
 */
export async function mountImageReadOnly(scope: Scope, image: string, work: string): Promise<string> {
  mkdirSync(work, { recursive: true });
  const raw = path.join(work, 'disk.raw');
  writeFileSync(raw, '');
  const pid = await qsd.startFuseExport(image, raw, path.join(work, 'qsd.pid'), true);
  scope.defer(`qemu-storage-daemon ${pid}`, () => qsd.stop(pid, raw));
  const loop = await losetup.attach(raw, true);
  scope.defer(`loop device ${loop}`, () => losetup.detach(loop));
  const partitions = await losetup.partitions(loop);
  const dev = partitions[partitions.length - 1] ?? loop;
  const root = path.join(work, 'root');
  mkdirSync(root, { recursive: true });
  // Not even a journal replay: ext4 says noload, XFS norecovery.
  const type = await fsType(dev);
  await mount(dev, root, { options: ['ro', 'noatime', ...(type.startsWith('ext') ? ['noload'] : type === 'xfs' ? ['norecovery'] : [])] });
  scope.defer(`mount ${root}`, () => umount(root));
  return root;
}

/**
 * A scratch raw disk file of `bytes`, partitioned and attached as a loop device: the first pass of
 * a base build writes here at the host's speed (no qcow2, no FUSE), and what it holds is then
 * repacked into the layer's image (repack.ts).
 */
export async function attachRawDisk(scope: Scope, raw: string, bytes: number, partitionScript: string): Promise<AttachedDisk> {
  writeFileSync(raw, '');
  truncateSync(raw, bytes);
  await partition(raw, partitionScript);
  const loop = await losetup.attach(raw);
  scope.defer(`loop device ${loop}`, () => losetup.detach(loop));
  const partitions = await losetup.partitions(loop);
  log.debug(`attached ${raw} as ${loop} (${partitions.join(', ') || 'no partitions'})`);
  return { raw, loop, partitions };
}

/** The root file system's device: the only partition, or the whole disk when it has none. */
export function rootDevice(disk: AttachedDisk): string {
  if (disk.partitions.length === 0) return disk.loop;
  if (disk.partitions.length === 1) return disk.partitions[0]!;
  throw new StepError(`disk has ${disk.partitions.length} partitions (${disk.partitions.join(', ')}); only single-root-partition images are supported by the chroot backend`);
}

/** Mounts `dev` at work/root; on release kills leftover guest processes, trims, unmounts. */
export async function mountRoot(scope: Scope, dev: string, work: string): Promise<string> {
  const root = path.join(work, 'root');
  mkdirSync(root, { recursive: true });
  // noatime: reading files would otherwise write inode updates into every layer's overlay.
  await mount(dev, root, { options: ['noatime'] });
  scope.defer(`mount ${root}`, async () => {
    try {
      await killProcessesUnder(root);
      const trimmed = await fstrim(root);
      if (trimmed) log.debug(trimmed);
    } finally {
      // A failed sync or trim (a full disk) must not leak the mount and everything beneath it.
      await umount(root);
    }
  });
  return root;
}

/**
 * The disk's device nodes and /dev/disk/by-uuid link for the guest's private /dev: a kernel
 * package's postinst runs update-grub, whose grub-probe must resolve the root device (and writes
 * root=UUID=..., not this host's loop device name).
 */
export async function chrootDevices(disk: AttachedDisk, root: string): Promise<ChrootOptions> {
  const uuid = await blkidUuid(root);
  return { blockDevices: [disk.loop, ...disk.partitions], byUuid: uuid ? { [uuid]: root } : {} };
}
