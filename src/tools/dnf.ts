// dnf: installs layer packages into a root from one repository, ignoring the host's own repos.
import { run, type RunOptions } from './run.js';

export interface DnfRepoOptions {
  root: string;
  /** http(s):// or file:// URL of the repository. */
  repoUrl: string;
  cacheDir: string;
  /** Unsigned repositories need it; signed ones are checked. */
  gpgcheck: boolean;
}

export function dnfArgs(o: DnfRepoOptions, command: string[]): string[] {
  return [
    '-y',
    `--installroot=${o.root}`,
    // dnf needs a release version for an empty installroot; layer packages do not use it.
    '--releasever=ost',
    '--setopt=reposdir=/dev/null',
    `--setopt=cachedir=${o.cacheDir}`,
    '--setopt=install_weak_deps=False',
    '--setopt=keepcache=False',
    `--repofrompath=ost-images,${o.repoUrl}`,
    '--repo=ost-images',
    // Without --refresh, cached metadata hides a changed repository.
    '--refresh',
    ...(o.gpgcheck ? [] : ['--nogpgcheck']),
    ...command,
  ];
}

export async function dnf(o: DnfRepoOptions, command: string[], opts: RunOptions = {}): Promise<string> {
  return (await run('dnf', dnfArgs(o, command), opts)).stdout;
}
