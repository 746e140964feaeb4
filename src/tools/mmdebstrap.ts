// mmdebstrap: installs a Debian system into a directory (here: the mounted root partition).
import type { MmdebstrapBase as BaseDef } from '../definitions/types.js';
import { run, type RunOptions } from './run.js';

export function mmdebstrapArgs(base: BaseDef, target: string, mirror: string): string[] {
  const args = [`--variant=${base.variant}`, `--components=${base.components.join(',')}`];
  if (base.packages.length > 0) args.push(`--include=${base.packages.join(',')}`);
  // The mounted file system already holds lost+found, which mmdebstrap accepts.
  args.push(base.suites.join(','), target, mirror);
  return args;
}

export async function mmdebstrap(base: BaseDef, target: string, mirror: string, opts: RunOptions = {}): Promise<void> {
  await run('mmdebstrap', mmdebstrapArgs(base, target, mirror), opts);
}
