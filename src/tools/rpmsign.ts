// rpmsign: signs packages in place with the repository's gpg key.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { gpgEnv } from './gpg.js';
import { run } from './run.js';

/** rpm's default __gpg is /usr/bin/gpg2, which Debian does not ship; use the gpg on PATH. */
function gpgPath(): string {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir, 'gpg');
    if (existsSync(p)) return p;
  }
  return '/usr/bin/gpg';
}

export function addSignArgs(files: string[], keyId: string): string[] {
  return ['--define', `_gpg_name ${keyId}`, '--define', `__gpg ${gpgPath()}`, '--addsign', ...files];
}

export async function addSign(files: string[], keyId: string): Promise<void> {
  if (files.length > 0) await run('rpmsign', addSignArgs(files, keyId), { env: gpgEnv() });
}
