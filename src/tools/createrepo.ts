// createrepo_c: repository metadata for a directory of RPMs.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { run } from './run.js';

/**
 * `previous` is the directory that holds the previous metadata's `repodata/` (not `repodata/`
 * itself: given that, createrepo_c finds nothing, says so only without --quiet, and reads every
 * package again). With it, packages whose name, size and mtime are unchanged are not read.
 */
export function createrepoArgs(dir: string, previous?: string, readList?: string): string[] {
  // --error-exit-val: an unreadable package fails the run instead of being left out with a warning.
  // --no-database: dnf reads only the XML; the sqlite copies cost time on every publish.
  const args = ['--quiet', '--error-exit-val', '--no-database', '--general-compress-type', 'gz', '--checksum', 'sha256'];
  if (previous) args.push('--update', '--update-md-path', previous);
  if (readList) args.push('--read-pkgs-list', readList);
  args.push(dir);
  return args;
}

/** Runs createrepo_c; returns the file names of the packages it actually read. */
export async function createrepo(dir: string, previous?: string): Promise<string[]> {
  const readList = path.join(dir, '.read-pkgs');
  try {
    // Working directory inside the snapshot being written: a createrepo_c orphaned by a killed
    // publisher is then known as that snapshot's writer (by its cwd) from its first instruction,
    // not only once it has files open there, and the next publisher stops it.
    await run('createrepo_c', createrepoArgs(dir, previous, readList), { cwd: dir });
    const text = existsSync(readList) ? readFileSync(readList, 'utf8') : '';
    return text.split('\n').filter(Boolean).map((p) => path.basename(p));
  } finally {
    rmSync(readList, { force: true });
  }
}
