// What a test machine does: install layer packages from a repository with dnf, here into a
// scratch root (--installroot) so nothing on the host changes.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoUrl } from '../repository/read.js';
import { checkNames } from '../input/args.js';
import { onUserPath, repoDirOrUrl } from '../input/paths.js';
import { log } from '../core/log.js';
import { PUBLIC_KEY_FILE } from '../repository/snapshot.js';
import { dnf } from '../tools/dnf.js';
import { installedNvrs } from '../tools/rpmbuild.js';


export interface InstallResult {
  root: string;
  installed: string[];
}


/**
 * With `gpgcheck`, signatures are checked against the key published beside the repository. Bad
 * input (a package name dnf would read as an option, a repository that is no directory or URL, a
 * root that cannot be a directory) is refused before anything is made.
 */
export async function installInto(rootArg: string, repo: string, packages: string[], gpgcheck = false): Promise<InstallResult> {
  checkNames('package name', packages, ' (ost-images install passes names to dnf, which has no way to take such a word as a name)');
  repoDirOrUrl('--repo', repo);
  // rpm --root and dnf --installroot both want an absolute path.
  const root = path.resolve(rootArg);
  onUserPath('--root', rootArg, () => mkdirSync(root, { recursive: true }));
  const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'ost-images-dnf-'));
  try {
    log.info(`dnf install ${packages.join(' ')} from ${repoUrl(repo)} into ${root}`);
    const url = repoUrl(repo).replace(/\/?$/, '/');
    const gpgKey = gpgcheck ? `${url}${PUBLIC_KEY_FILE}` : undefined;
    await dnf({ root, repoUrl: url, cacheDir, gpgKey }, ['install'], { packages, onLine: (l) => log.debug(`  | ${l}`) });
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
  return { root, installed: await installedNvrs(root) };
}
