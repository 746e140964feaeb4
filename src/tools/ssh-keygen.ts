// ssh-keygen: the root key pair of a base image.
import { run } from './run.js';

export function keygenArgs(file: string, comment: string): string[] {
  return ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file];
}

export async function keygen(file: string, comment: string): Promise<void> {
  await run('ssh-keygen', keygenArgs(file, comment));
}

/** `-P ''`: an encrypted key fails at once instead of prompting for its passphrase. */
export function publicKeyArgs(file: string): string[] {
  return ['-y', '-P', '', '-f', file];
}

/** The public key line of a private key file. */
export async function publicKeyOf(file: string): Promise<string> {
  return (await run('ssh-keygen', publicKeyArgs(file))).stdout.trim();
}
