// mmdebstrap: installs a Debian system into a directory (here: the mounted root partition).
/** What mmdebstrap is told of a base (a mmdebstrap base of a layer set satisfies it). */
export interface BaseDef {
  variant: string;
  components: string[];
  packages: string[];
  suites: string[];
}
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
