// The second pass of a mmdebstrap base build: the finished, sealed tree of the first pass is copied
// into a new file system by mke2fs -d, in a fixed order, on a new disk, so that the same tree gives
// the same qcow2 bytes. The first pass wrote through the kernel's ext4 driver, whose block and inode
// allocation, journal and times depend on timing; mke2fs -d allocates in the order it reads the
// sorted tree, from the seeds and SOURCE_DATE_EPOCH (E2FSPROGS_FAKE_TIME) it is given.
//
//   boot area       the first pass's MBR (partition table, disk id from the key) and GRUB's core
//                   image in the gap before the partition, copied byte for byte: it names the root
//                   file system by UUID, which the new one keeps
//   root partition  mke2fs -d of the tree (same UUID, hash seed, label, journal size), then every
//                   inode's change and access time set to the epoch with debugfs: e2fsprogs 1.47.0
//                   copies them from the source, where the kernel stamped them with the clock
//                   (1.47.1 can take SOURCE_DATE_EPOCH itself; Debian 12 has 1.47.0)
//   image           qemu-img convert of that raw disk: clusters written in order, zeros left out
import { closeSync, openSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { StepError } from '../core/errors.js';
import { checkInterrupted } from '../core/interrupt.js';
import { log } from '../core/log.js';
import { atOffset, checkExt, debugfsWrite, dumpe2fs, mkfsExt4, timeCommands, usedInodes, type Ext4Identity } from '../tools/e2fsprogs.js';
import { mount, partitionTable } from '../tools/mount.js';
import * as qemuImg from '../tools/qemu-img.js';
import type { AttachedDisk } from './disk.js';

/** Copies the first `bytes` of `from` (a block device) into `to` at the same offset. */
function copyHead(from: string, to: string, bytes: number): void {
  const buf = Buffer.alloc(bytes);
  const src = openSync(from, 'r');
  try {
    let got = 0;
    while (got < bytes) {
      const n = readSync(src, buf, got, bytes - got, got);
      if (n === 0) throw new StepError(`${from} ended after ${got} of its first ${bytes} bytes`);
      got += n;
    }
  } finally {
    closeSync(src);
  }
  const dst = openSync(to, 'r+');
  try {
    writeSync(dst, buf, 0, bytes, 0);
  } finally {
    closeSync(dst);
  }
}

export interface RepackOptions {
  layer: string;
  /** The first pass's disk, still attached; its root file system mounted at `root`. */
  disk: AttachedDisk;
  root: string;
  /** The qcow2 to write. */
  image: string;
  sizeBytes: number;
  id: Ext4Identity;
  epoch: number;
  work: string;
}

export async function repackBase(o: RepackOptions): Promise<void> {
  const t0 = Date.now();
  // Nothing may change the tree while it is copied; read-only also flushes what is pending.
  await mount(o.root, o.root, { options: ['remount', 'ro'] });
  const table = await partitionTable(o.disk.raw);
  const part = table.partitions[0];
  if (table.partitions.length !== 1 || !part) throw new StepError(`${o.layer}: the first pass's disk should have one partition, it has ${table.partitions.length}`);
  const start = part.start * 512;
  const blocks = Math.floor((part.size * 512) / 4096);
  const raw = path.join(o.work, 'repacked.raw');
  try {
    writeFileSync(raw, '');
    truncateSync(raw, o.sizeBytes);
    // Through the loop device, whose cache holds what grub-install wrote.
    copyHead(o.disk.loop, raw, start);
    await mkfsExt4(raw, 'root', { id: o.id, from: o.root, offset: start, blocks, epoch: o.epoch });
    checkInterrupted();
    const fs = atOffset(raw, start);
    const commands = path.join(o.work, 'times.debugfs');
    writeFileSync(commands, timeCommands(usedInodes(await dumpe2fs(fs)), o.epoch));
    await debugfsWrite(fs, commands, o.epoch);
    await checkExt(fs);
    checkInterrupted();
    await qemuImg.convertTo(raw, 'raw', o.image);
  } finally {
    rmSync(raw, { force: true });
  }
  log.info(`${o.layer}: repacked into a new file system in a fixed order (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}
