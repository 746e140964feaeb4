// mount / umount / fstrim / mknod for the chroot backend; sfdisk and blkid for partitions and file systems.
import { run } from './run.js';

export async function mount(source: string, target: string, opts: { type?: string; options?: string[]; bind?: boolean } = {}): Promise<void> {
  const args: string[] = [];
  if (opts.bind) args.push('--bind');
  if (opts.type) args.push('-t', opts.type);
  if (opts.options?.length) args.push('-o', opts.options.join(','));
  args.push(source, target);
  await run('mount', args);
}

export async function umount(target: string): Promise<void> {
  await run('umount', [target], { cleanup: true });
}

/**
 * Gives freed file-system blocks back to the image below (qcow2 clusters of the overlay).
 * Measured: without the syncfs first, ext4 cannot trim blocks freed in the still-open journal
 * transaction (apt's deleted .debs), and a 200 MiB deleted file stayed allocated in the overlay.
 */
export async function fstrim(target: string): Promise<string> {
  await run('sync', ['--file-system', target], { cleanup: true });
  return (await run('fstrim', ['--verbose', target], { cleanup: true, allowFailure: true })).stdout.trim();
}

export async function mknod(file: string, mode: string, type: 'c' | 'b', major: number, minor: number): Promise<void> {
  await run('mknod', ['-m', mode, file, type, String(major), String(minor)]);
}

export async function blkidUuid(dev: string): Promise<string> {
  return (await run('blkid', ['-s', 'UUID', '-o', 'value', dev])).stdout.trim();
}

/** One MBR partition from 1 MiB to the end, bootable, type Linux. */
export const SINGLE_ROOT_PARTITION = 'label: dos\nstart=2048, type=83, bootable\n';

/** The partition table of a disk image file: its label and partitions (sfdisk --json). */
export interface PartitionTable {
  label: string;
  partitions: { node: string; start: number; size: number; type: string }[];
}

export async function partitionTable(file: string): Promise<PartitionTable> {
  const out = (await run('sfdisk', ['--json', file])).stdout;
  const t = (JSON.parse(out) as { partitiontable: { label: string; partitions?: PartitionTable['partitions'] } }).partitiontable;
  return { label: t.label, partitions: t.partitions ?? [] };
}

/** Grows partition `n` (1-based) to the end of the disk; GPT's backup header is moved there first. */
export async function growPartition(file: string, n: number, label: string): Promise<void> {
  if (label === 'gpt') await run('sfdisk', ['--quiet', '--relocate', 'gpt-bak-std', file]);
  await run('sfdisk', ['--quiet', '--no-reread', '-N', String(n), file], { input: ', +\n' });
}

export async function fsType(dev: string): Promise<string> {
  return (await run('blkid', ['-s', 'TYPE', '-o', 'value', dev])).stdout.trim();
}

/** Grows a mounted XFS file system to its partition. */
export async function growXfs(mountpoint: string): Promise<void> {
  await run('xfs_growfs', [mountpoint]);
}

export async function partition(file: string, script: string): Promise<void> {
  await run('sfdisk', ['--quiet', file], { input: script });
}
