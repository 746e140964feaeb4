// chroot: runs a guest program (argv) inside a mounted guest root with a fixed environment.
import { run, type RunOptions } from './run.js';

export function chrootArgs(root: string, argv: string[]): string[] {
  return [root, ...argv];
}

export const GUEST_ENV: Record<string, string> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  DEBIAN_FRONTEND: 'noninteractive',
  DEBCONF_NONINTERACTIVE_SEEN: 'true',
  HOME: '/root',
};

export async function inChroot(root: string, argv: string[], opts: RunOptions = {}): Promise<string> {
  return (await run('chroot', chrootArgs(root, argv), { ...opts, env: { ...GUEST_ENV, ...opts.env } })).stdout;
}
