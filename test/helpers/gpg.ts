// A throwaway gpg signing key in a private GNUPGHOME, made in seconds (no passphrase), as a CI
// job would hold its repository key. Short paths: gpg-agent's socket lives in the home directory.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';

export interface TestKey {
  home: string;
  email: string;
  fingerprint: string;
}

export function makeTestKey(email = 'ost-images-test@example.invalid'): TestKey {
  const home = mkdtempSync('/tmp/gpg-');
  const env = { ...process.env, GNUPGHOME: home };
  execFileSync('gpg', ['--batch', '--passphrase', '', '--quick-gen-key', `ost-images test <${email}>`, 'rsa2048', 'sign', 'never'], { env, stdio: 'ignore' });
  const colons = execFileSync('gpg', ['--batch', '--with-colons', '--list-secret-keys', email], { env }).toString();
  const fingerprint = /^fpr:(?:[^:]*:){8}([0-9A-F]{40}):/m.exec(colons)![1]!;
  return { home, email, fingerprint };
}

export function dropTestKey(key: TestKey | undefined): void {
  if (!key) return;
  try {
    execFileSync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: key.home }, stdio: 'ignore' });
  } catch {
    // No agent was started.
  }
  rmSync(key.home, { recursive: true, force: true });
}
