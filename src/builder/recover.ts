// Reclaims what a killed run left behind. SIGKILL (or a power cut) gives no process the chance to
// release its mounts, loop devices and qemu-storage-daemon; left alone they pile up until the
// builder cannot build at all. Every such resource lives under a work directory named with its
// owner's pid, so a dead owner's leftovers are found without guessing.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { log } from '../core/log.js';
import { mountsUnder, pidsUsing, pidsWhere } from '../core/proc.js';
import { run } from '../tools/run.js';
import type { Store } from '../store/store.js';
import * as losetup from '../tools/losetup.js';
import { umount } from '../tools/mount.js';
import * as qsd from '../tools/qemu-storage-daemon.js';
import { killProcessesUnder } from './processes.js';

/**
 * Removes a work directory, unless something is still mounted in it: deleting recursively through
 * a leaked mount would delete inside the guest image or, through a bind mount, on the host.
 */
export function removeWorkDir(dir: string): void {
  const mounted = mountsUnder(dir);
  if (mounted.length > 0) {
    log.warn(`not removing ${dir}: still mounted there (${mounted.join(', ')}); the next run reclaims it`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Releases everything under a dead run's work directory, however deep: a build's own disk, and the
 * scratch stores of `verify --rebuild`, each with builds and read-only mounts of their own.
 */
async function reclaim(dir: string): Promise<void> {
  log.warn(`reclaiming leftovers of a killed run in ${dir}`);
  // Guest processes (a chroot's daemons) keep mounts busy: any whose root is under the directory.
  await killProcessesUnder(dir);
  // A kickstart install's QEMU (its own process group, outliving its killed parent) holds the
  // kickstart volume under kickstart/ open.
  for (const pid of pidsUsing([dir]).keys()) {
    if (!readCmdline(pid).some((a) => a.includes('qemu-system'))) continue;
    log.warn(`stopping installer process ${pid} left by a killed run`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Exited meanwhile.
    }
  }
  // Deepest first, the FUSE exports of qemu-storage-daemon last (the loop devices sit on them).
  for (const m of mountsUnder(dir).filter((m) => !m.endsWith('.raw'))) await umount(m).catch((e: Error) => log.warn(e.message));
  for (const dev of await losetup.attachedUnder(dir)) await losetup.detach(dev).catch((e: Error) => log.warn(e.message));
  // Every daemon exporting an image under the directory, found by its command line: a pid file can
  // be missing (killed before it was written) and a pid can be reused.
  for (const pid of pidsWhere((argv) => argv.some((a) => a.endsWith('qemu-storage-daemon')) && argv.some((a) => a.includes(`${dir}/`)))) {
    const mountpoint = /mountpoint=([^,]+)/.exec(readCmdline(pid).join(' '))?.[1] ?? path.join(dir, 'disk.raw');
    await qsd.stop(pid, mountpoint);
  }
  for (const m of mountsUnder(dir)) await run('umount', ['-l', m], { cleanup: true, allowFailure: true });
  removeWorkDir(dir);
}

function readCmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

export async function recoverOrphans(store: Store): Promise<number> {
  const dirs = store.orphanedWorkDirs();
  for (const dir of dirs) await reclaim(dir);
  return dirs.length;
}
