// dnf: installs layer packages into a root from one repository, ignoring the host's own repos.
//
// Package names go last, each checked: dnf reads any word starting with '-' as an option, even
// after the subcommand, and (dnf 4.14) does not take `--` as the end of its options ("unrecognized
// arguments"), so `install -- --installroot=X pkg` would install into X. Such a name is refused.
import { checkNames } from '../input/args.js';
import { run, type RunOptions } from './run.js';

export interface DnfRepoOptions {
  root: string;
  /** http(s):// or file:// URL of the repository. */
  repoUrl: string;
  cacheDir: string;
  /** URL of the repository's public key: packages and repomd.xml are then checked against it. */
  gpgKey?: string;
  /** Extra dnf options (--setopt=...). */
  setopts?: string[];
}

/** `command`: dnf's subcommand and its options; `packages`: names, checked (UsageError) and put last. */
export function dnfArgs(o: DnfRepoOptions, command: string[], packages: string[] = []): string[] {
  checkNames('package name', packages);
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
    ...(o.gpgKey
      ? ['--setopt=ost-images.gpgcheck=1', '--setopt=ost-images.repo_gpgcheck=1', `--setopt=ost-images.gpgkey=${o.gpgKey}`]
      : ['--nogpgcheck']),
    ...(o.setopts ?? []),
    ...command,
    ...packages,
  ];
}

export async function dnf(o: DnfRepoOptions, command: string[], opts: RunOptions & { packages?: string[] } = {}): Promise<string> {
  const { packages, ...runOpts } = opts;
  return (await run('dnf', dnfArgs(o, command, packages), runOpts)).stdout;
}

/**
 * Removes exactly these installed packages: no repositories needed, and none of dnf's clean-up of
 * "unneeded" dependencies beyond the list.
 */
export function dnfRemoveArgs(root: string, nvrs: string[]): string[] {
  checkNames('package name', nvrs);
  const args = ['-y', '--setopt=reposdir=/dev/null', '--setopt=clean_requirements_on_remove=False', '--disableplugin=*'];
  if (root !== '/') args.push(`--installroot=${root}`, '--releasever=ost');
  return [...args, 'remove', ...nvrs];
}

export async function dnfRemove(root: string, nvrs: string[]): Promise<void> {
  await run('dnf', dnfRemoveArgs(root, nvrs));
}
