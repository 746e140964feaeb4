// virt-customize and virt-sparsify: the guestfs backend. The guest runs inside libguestfs's
// appliance VM, isolated from the host; under TCG every guest process is emulated.
import { run, type RunOptions } from './run.js';

export type GuestfsOp =
  | { op: 'install'; packages: string[] }
  | { op: 'update' }
  | { op: 'upload'; from: string; to: string; mode: number }
  | { op: 'run'; script: string }
  /** Fixed commands of the toolchain's own, never user data. */
  | { op: 'run-command'; command: string };

export function customizeArgs(image: string, ops: GuestfsOp[], vm: { memMiB: number; smp: number }): string[] {
  const args = ['--format', 'qcow2', '-a', image, '--memsize', String(vm.memMiB), '--smp', String(vm.smp), '--no-logfile'];
  for (const o of ops) {
    switch (o.op) {
      case 'install':
        args.push('--install', o.packages.join(','));
        break;
      case 'update':
        args.push('--update');
        break;
      case 'upload':
        args.push('--upload', `${o.from}:${o.to}`, '--chmod', `${o.mode.toString(8).padStart(4, '0')}:${o.to}`);
        break;
      case 'run':
        args.push('--run', o.script);
        break;
      case 'run-command':
        args.push('--run-command', o.command);
        break;
    }
  }
  return args;
}

/** libguestfs hangs forever on a /dev/kvm that opens but cannot run a guest; force_tcg avoids it. */
export function guestfsEnv(kvmUsable: boolean): Record<string, string> {
  return { LIBGUESTFS_BACKEND: 'direct', ...(kvmUsable ? {} : { LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' }) };
}

export async function customize(image: string, ops: GuestfsOp[], kvmUsable: boolean, opts: RunOptions = {}): Promise<void> {
  await run('virt-customize', customizeArgs(image, ops, { memMiB: 2048, smp: 2 }), { ...opts, env: { ...guestfsEnv(kvmUsable), ...opts.env } });
}

/** A file's content from inside an image (virt-cat: one more appliance run). */
export async function catFile(image: string, file: string, kvmUsable: boolean): Promise<string> {
  // `--format=qcow2` in one word: for the C tools a bare `--format` means "autodetect again" and
  // the next word would be taken as a file to print.
  return (await run('virt-cat', ['--format=qcow2', '-a', image, file], { env: guestfsEnv(kvmUsable) })).stdout;
}

export async function sparsifyInPlace(image: string, kvmUsable: boolean): Promise<void> {
  await run('virt-sparsify', ['--in-place', '--format', 'qcow2', image], { env: guestfsEnv(kvmUsable) });
}
