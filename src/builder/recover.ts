// Reclaims what a killed run left behind. SIGKILL (or a power cut) gives no process the chance to
// release its mounts, loop devices and qemu-storage-daemon; left alone they pile up until the
// builder cannot build at all. Every such resource lives under a work directory named with its
// owner's pid, so a dead owner's leftovers are found without guessing.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { log } from '../log.js';
import { mountsUnder, pidsUsing } from '../proc.js';
import type { Store } from '../store.js';
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

export async function recoverOrphans(store: Store): Promise<number> {
  const dirs = store.orphanedWorkDirs();
  for (const dir of dirs) {
    log.warn(`reclaiming leftovers of a killed run in ${dir}`);
    await killProcessesUnder(path.join(dir, 'root'));
    // A kickstart install's QEMU (its own process group, outliving its killed parent) holds the
    // kickstart volume under kickstart/ open.
    for (const pid of pidsUsing([path.join(dir, 'kickstart')]).keys()) {
      log.warn(`stopping installer process ${pid} left by a killed run`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Exited meanwhile.
      }
    }
    for (const m of mountsUnder(dir).filter((m) => !m.endsWith('/disk.raw'))) await umount(m).catch((e: Error) => log.warn(e.message));
    for (const dev of await losetup.attachedUnder(dir)) await losetup.detach(dev).catch((e: Error) => log.warn(e.message));
    let pid = 0;
    try {
      pid = Number(readFileSync(path.join(dir, 'qsd.pid'), 'utf8').trim());
    } catch {
      // No daemon was started.
    }
    // Only a daemon that is still ours: a pid can be reused after its process died.
    const isDaemon = pid > 0 && (() => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('qemu-storage-daemon');
      } catch {
        return false;
      }
    })();
    if (isDaemon) await qsd.stop(pid, path.join(dir, 'disk.raw'));
    else if (mountsUnder(dir).length > 0) await umount(path.join(dir, 'disk.raw')).catch((e: Error) => log.warn(e.message));
    removeWorkDir(dir);
  }
  return dirs.length;
}
