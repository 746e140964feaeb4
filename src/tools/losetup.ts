// losetup and partx: a loop device over the raw FUSE file, and its partitions.
//
// Seen on our builders: the kernel's own partition scan of a loop device on a FUSE file finds the
// table (sfdisk -l reads it) but creates no partition devices, and a re-read removes them again.
// partx -a registers them through BLKPG, after which devtmpfs shows /dev/loopNpM.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './run.js';

export function attachArgs(file: string, readOnly = false): string[] {
  return ['--find', '--show', '--partscan', ...(readOnly ? ['--read-only'] : []), file];
}

export async function attach(file: string, readOnly = false): Promise<string> {
  return (await run('losetup', attachArgs(file, readOnly))).stdout.trim();
}

export async function detach(dev: string): Promise<void> {
  await run('losetup', ['--detach', dev], { cleanup: true });
}

/** Partition device paths of a loop device, registering them with partx when the kernel did not. */
export async function partitions(dev: string): Promise<string[]> {
  const name = path.basename(dev);
  const sys = `/sys/block/${name}`;
  const list = (): string[] => readdirSync(sys).filter((e) => e.startsWith(`${name}p`)).sort();
  if (list().length === 0) await run('partx', ['--add', dev], { allowFailure: true });
  const parts = list().map((p) => `/dev/${p}`);
  // devtmpfs creates the nodes asynchronously.
  for (let i = 0; i < 50 && parts.some((p) => !existsSync(p)); i++) await sleep(100);
  return parts;
}

/** Loop devices whose backing file lies under `dir` (leftovers of a run that was killed). */
export async function attachedUnder(dir: string): Promise<string[]> {
  const r = await run('losetup', ['--list', '--json', '--output', 'NAME,BACK-FILE'], { cleanup: true, allowFailure: true });
  if (r.exitCode !== 0 || !r.stdout.trim()) return [];
  const devs = (JSON.parse(r.stdout) as { loopdevices: { name: string; 'back-file': string | null }[] }).loopdevices;
  return devs.filter((d) => d['back-file']?.startsWith(dir + '/')).map((d) => d.name);
}
