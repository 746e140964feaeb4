// ssh-keygen: the root key pair of a base image.
import { run } from './run.js';

export function keygenArgs(file: string, comment: string): string[] {
  return ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file];
}

export async function keygen(file: string, comment: string): Promise<void> {
  await run('ssh-keygen', keygenArgs(file, comment));
}
