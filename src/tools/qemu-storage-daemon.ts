// qemu-storage-daemon: exposes a qcow2 image as a raw file through FUSE so a loop device can be
// put on it. discard=unmap on both nodes lets fstrim inside the guest file system reach the
// qcow2 and free clusters of the overlay.
import { readFileSync } from 'node:fs';
import { mountsUnder, pidAlive } from '../core/proc.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { StepError } from '../core/errors.js';
import { log } from '../core/log.js';
import { run } from './run.js';

/** `readOnly`: the image (and its backing chain) opened read-only, the export not writable. */
export function fuseExportArgs(image: string, mountpoint: string, pidfile: string, readOnly = false): string[] {
  return readOnly
    ? [
        '--blockdev', `driver=file,node-name=file0,filename=${image},read-only=on`,
        '--blockdev', 'driver=qcow2,node-name=disk0,file=file0,read-only=on',
        '--export', `type=fuse,id=export0,node-name=disk0,mountpoint=${mountpoint},writable=off`,
        '--daemonize',
        '--pidfile', pidfile,
      ]
    : [
        '--blockdev', `driver=file,node-name=file0,filename=${image},discard=unmap`,
        '--blockdev', 'driver=qcow2,node-name=disk0,file=file0,discard=unmap',
        '--export', `type=fuse,id=export0,node-name=disk0,mountpoint=${mountpoint},writable=on`,
        '--daemonize',
        '--pidfile', pidfile,
      ];
}

/** Starts the daemon; returns its pid. The mountpoint must be an existing regular file. */
export async function startFuseExport(image: string, mountpoint: string, pidfile: string, readOnly = false): Promise<number> {
  if (image.includes(',')) throw new StepError(`image path must not contain ',' (qemu option syntax): ${image}`);
  await run('qemu-storage-daemon', fuseExportArgs(image, mountpoint, pidfile, readOnly));
  return Number(readFileSync(pidfile, 'utf8').trim());
}

const alive = pidAlive;

/**
 * Stops the daemon and waits until it is gone: it flushes the qcow2 on SIGTERM, and an image
 * renamed or read while it still writes would be inconsistent.
 */
export async function stop(pid: number, mountpoint: string): Promise<void> {
  if (alive(pid)) process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 300 && alive(pid); i++) await sleep(100);
  if (alive(pid)) {
    log.warn(`qemu-storage-daemon ${pid} ignored SIGTERM for 30s; killing it`);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
  }
  // Seen here: a daemon that died can leave its FUSE mount behind ("Transport endpoint is not
  // connected"); lift it so the work directory can be removed.
  if (mountsUnder(mountpoint).length > 0) {
    await run('umount', ['-l', mountpoint], { cleanup: true, allowFailure: true });
  }
}
