// createrepo_c: repository metadata for a directory of RPMs.
import { run } from './run.js';

export function createrepoArgs(dir: string, previous?: string): string[] {
  // --update with the previous snapshot's metadata: only packages whose size or mtime changed are
  // read again (hard links keep both).
  // --error-exit-val: an unreadable package fails the run instead of being left out with a warning.
  // --no-database: dnf reads only the XML; the sqlite copies cost time on every publish.
  const args = ['--quiet', '--error-exit-val', '--no-database', '--general-compress-type', 'gz', '--checksum', 'sha256'];
  if (previous) args.push('--update', '--update-md-path', previous);
  args.push(dir);
  return args;
}

export async function createrepo(dir: string, previous?: string): Promise<void> {
  await run('createrepo_c', createrepoArgs(dir, previous));
}
