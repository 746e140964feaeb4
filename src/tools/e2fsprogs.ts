// e2fsprogs: making, filling, checking and growing ext4 file systems, and setting inode fields.
// Every program reads E2FSPROGS_FAKE_TIME (the library's clock) when given one: the superblock's
// and new inodes' times then come from the layer's SOURCE_DATE_EPOCH, not the build host's clock.
import { StepError } from '../core/errors.js';
import { run } from './run.js';

/** The file system identity a base build fixes instead of drawing at random (plan/epoch.ts). */
export interface Ext4Identity {
  uuid: string;
  hashSeed: string;
}

const fakeTime = (epoch?: number): Record<string, string> => (epoch === undefined ? {} : { E2FSPROGS_FAKE_TIME: String(epoch) });

/**
 * mke2fs for the root file system. nodiscard: the fresh disk is already all holes. A 32 MiB
 * journal: every layer rewrites journal blocks into its overlay, up to the journal size. 4 KiB
 * blocks always: the default depends on the size. With `from`, the file system is filled from
 * that folder (mke2fs -d: entries in sorted order, inodes and blocks allocated in that order, so
 * the same tree gives the same bytes); with `offset`, it starts that many bytes into `dev` (a
 * whole-disk image file) and has `blocks` blocks.
 */
export function mkfsArgs(dev: string, o: { label: string; id?: Ext4Identity; from?: string; offset?: number; blocks?: number }): string[] {
  const ext = ['root_owner=0:0', 'nodiscard'];
  if (o.id) ext.unshift(`hash_seed=${o.id.hashSeed}`);
  if (o.offset !== undefined) ext.push(`offset=${o.offset}`);
  return [
    '-q', '-F', '-t', 'ext4', '-b', '4096', '-L', o.label, '-J', 'size=32',
    ...(o.id ? ['-U', o.id.uuid] : []),
    '-E', ext.join(','),
    ...(o.from !== undefined ? ['-d', o.from] : []),
    dev,
    ...(o.blocks !== undefined ? [String(o.blocks)] : []),
  ];
}

export async function mkfsExt4(dev: string, label: string, o: { id?: Ext4Identity; from?: string; offset?: number; blocks?: number; epoch?: number } = {}): Promise<void> {
  await run('mke2fs', mkfsArgs(dev, { label, ...o }), { env: fakeTime(o.epoch) });
}

/** A file system inside a disk image file, as e2fsprogs' unix I/O names it. */
export const atOffset = (file: string, offset: number): string => (offset === 0 ? file : `${file}?offset=${offset}`);

/** Inodes in use, from dumpe2fs's free-inode ranges per group (reserved ones below 11 excluded but 2, the root). */
export function usedInodes(dumpe2fsOutput: string): number[] {
  const perGroup = Number(/^Inodes per group:\s+([0-9]+)$/m.exec(dumpe2fsOutput)?.[1]);
  if (!(perGroup > 0)) throw new StepError('dumpe2fs printed no "Inodes per group"');
  const used: number[] = [];
  let group = -1;
  for (const line of dumpe2fsOutput.split('\n')) {
    const g = /^Group ([0-9]+):/.exec(line);
    if (g) {
      group = Number(g[1]);
      continue;
    }
    const f = /^\s+Free inodes: ?(.*)$/.exec(line);
    if (!f || group < 0) continue;
    const free = new Set<number>();
    for (const range of f[1]!.split(',').map((r) => r.trim()).filter(Boolean)) {
      const [a, b] = range.split('-').map(Number) as [number, number | undefined];
      for (let i = a; i <= (b ?? a); i++) free.add(i);
    }
    for (let i = group * perGroup + 1; i <= (group + 1) * perGroup; i++) if (!free.has(i) && (i === 2 || i >= 11)) used.push(i);
  }
  return used;
}

export async function dumpe2fs(fs: string): Promise<string> {
  return (await run('dumpe2fs', [fs])).stdout;
}

/**
 * debugfs commands that give every inode in use the same change and access time: mke2fs -d copies
 * them from the source tree, where the kernel set them when the build wrote the files.
 */
export function timeCommands(inodes: number[], epoch: number): string {
  const t = new Date(epoch * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return inodes.map((i) => `sif <${i}> ctime ${t}\nsif <${i}> atime ${t}\n`).join('');
}

/** Runs a debugfs command file read-write; debugfs reports a failed command on stderr, not in its exit code. */
export async function debugfsWrite(fs: string, commandFile: string, epoch: number): Promise<void> {
  const r = await run('debugfs', ['-w', '-f', commandFile, fs], { env: fakeTime(epoch) });
  const errors = r.stderr.split('\n').filter((l) => l.trim() && !/^debugfs [0-9.]+ \(/.test(l));
  if (errors.length > 0) throw new StepError(`debugfs on ${fs}: ${errors.slice(0, 5).join('; ')}`);
}

/** Grows an unmounted ext2/3/4 file system to its partition (checked first, as resize2fs demands). */
export async function growExt(dev: string): Promise<void> {
  // Exit 1 and 2 mean "errors corrected"; 4 and above mean the file system is not safe to grow.
  const r = await run('e2fsck', ['-f', '-y', dev], { allowFailure: true });
  if (r.exitCode >= 4) throw new StepError(`e2fsck -f -y ${dev} exited with ${r.exitCode}: ${r.stdout.split('\n').slice(-5).join(' ')}`);
  await run('resize2fs', [dev]);
}

/** Checks an unmounted file system without changing it; throws with e2fsck's report. */
export async function checkExt(fs: string): Promise<void> {
  const r = await run('e2fsck', ['-f', '-n', fs], { allowFailure: true });
  if (r.exitCode !== 0) throw new StepError(`e2fsck -f -n ${fs} found problems (exit ${r.exitCode}): ${r.stdout.split('\n').slice(-6).join(' ')}`);
}

/** A file's ext2/3/4 attribute letters (lsattr: i immutable, a append-only, ...). */
export async function fileFlags(file: string): Promise<string> {
  const out = (await run('lsattr', ['-d', '--', file])).stdout.trim();
  return out.split(/\s+/)[0]?.replace(/-/g, '') ?? '';
}

/** chattr: `change` like "-i" or "+ia". */
export async function setFileFlags(file: string, change: string): Promise<void> {
  await run('chattr', [change, '--', file]);
}
