// Facts about processes and mounts, read from /proc. Shared so every stage agrees on them.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** True while a process exists (EPERM: it exists, it is just not ours to signal). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** Mount points at or below `dir`, deepest first (so they can be unmounted in that order). */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * Processes with `path` (or anything below it) open or as their working directory: an orphaned
 * createrepo_c still writing a dead publisher's snapshot, or a qemu running a VM on an installed
 * image (qemu keeps every file of a backing chain open).
 */
export function pidsUsing(paths: string[]): Map<number, string[]> {
  const inside = (p: string) => paths.some((dir) => p === dir || p.startsWith(`${dir}/`));
  const out = new Map<number, string[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry) || Number(entry) === process.pid) continue;
    const hits = new Set<string>();
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (inside(cwd)) hits.add(cwd);
      for (const fd of readdirSync(`/proc/${entry}/fd`)) {
        try {
          const target = readlinkSync(`/proc/${entry}/fd/${fd}`);
          if (inside(target)) hits.add(target);
        } catch {
          // Closed meanwhile.
        }
      }
    } catch {
      continue; // Gone, or not ours to inspect.
    }
    if (hits.size > 0) out.set(Number(entry), [...hits]);
  }
  return out;
}

/** Other processes whose command line (argv, split at NULs) satisfies `match`. */
export function pidsWhere(match: (argv: string[]) => boolean): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (match(readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0'))) pids.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours to inspect.
    }
  }
  return pids;
}
