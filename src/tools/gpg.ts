// gpg: the repository's signing key. The key is named by id, fingerprint or e-mail and looked up in
// the keyring of GNUPGHOME (or ~/.gnupg); the run environment is otherwise minimal, so GNUPGHOME
// is handed on explicitly.
import { UsageError } from '../core/errors.js';
import { run } from './run.js';

export function gpgEnv(): Record<string, string> {
  return process.env.GNUPGHOME ? { GNUPGHOME: process.env.GNUPGHOME } : {};
}

/** The fingerprint of the secret key `keyId`; a usage error when the keyring has none. */
export async function secretKeyFingerprint(keyId: string): Promise<string> {
  return (await secretKeyFingerprints(keyId))[0]!;
}

/**
 * The fingerprints of the secret key `keyId`: the primary key first, then its subkeys (gpg signs
 * with a signing subkey when there is one, so a signature may carry any of them).
 */
export async function secretKeyFingerprints(keyId: string): Promise<string[]> {
  const r = await run('gpg', ['--batch', '--with-colons', '--list-secret-keys', '--', keyId], { env: gpgEnv(), allowFailure: true });
  const all = r.exitCode === 0 ? [...r.stdout.matchAll(/^fpr:(?:[^:]*:){8}([0-9A-F]{40,64}):/gm)].map((m) => m[1]!) : [];
  const fpr = all[0];
  if (!fpr) {
    const home = process.env.GNUPGHOME ?? '~/.gnupg';
    throw new UsageError(`--sign-key: no secret key '${keyId}' in the gpg keyring of ${home} (set GNUPGHOME to the keyring that holds it)`);
  }
  return all;
}

export async function exportPublicKey(keyId: string): Promise<string> {
  return (await run('gpg', ['--batch', '--armor', '--export', '--', keyId], { env: gpgEnv() })).stdout;
}

export function detachSignArgs(file: string, out: string, keyId: string): string[] {
  return ['--batch', '--yes', '--armor', '--local-user', keyId, '--detach-sign', '--output', out, '--', file];
}

/** An armored detached signature of `file` written to `out` (repomd.xml -> repomd.xml.asc). */
export async function detachSign(file: string, out: string, keyId: string): Promise<void> {
  await run('gpg', detachSignArgs(file, out, keyId), { env: gpgEnv() });
}

/** Checks a detached signature against the keyring; throws when it does not verify. */
export async function verifyDetached(sig: string, file: string): Promise<void> {
  await run('gpg', ['--batch', '--verify', '--', sig, file], { env: gpgEnv() });
}
