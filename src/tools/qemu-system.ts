// qemu-system-x86_64: boots images (test-boot) and probes whether KVM can really run a guest.
import { spawnLong, type RunOptions } from './run.js';

export type Accel = 'kvm' | 'tcg';

export interface BootOptions {
  accel: Accel;
  memMiB: number;
  smp: number;
}

/**
 * Boots `image` from its own disk (BIOS -> bootloader on the disk), serial console on stdio.
 * snapshot=on sends every write to a temporary file, so booting never changes the image (which is
 * read-only and may back other layers).
 */
export function bootArgs(image: string, o: BootOptions): string[] {
  return [
    '-accel', o.accel,
    ...(o.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', String(o.memMiB),
    '-smp', String(o.smp),
    '-nographic',
    '-no-reboot',
    '-serial', 'mon:stdio',
    '-drive', `file=${image},format=qcow2,if=virtio,snapshot=on`,
    '-nic', 'user,model=virtio-net-pci',
  ];
}

/** A kernel without a disk: prints "Linux version" within seconds when the accelerator works. */
export function probeArgs(kernel: string, accel: Accel): string[] {
  return ['-accel', accel, '-m', '256', '-nographic', '-no-reboot', '-kernel', kernel, '-append', 'console=ttyS0 panic=-1'];
}

export function startQemu(args: string[], opts: RunOptions = {}) {
  return spawnLong('qemu-system-x86_64', args, opts);
}

export interface ConsoleResult {
  matched: boolean;
  seconds: number;
  /** Why it stopped without a match: timeout or the VM exiting. */
  reason?: string;
  output: string;
}

/**
 * Runs qemu until its console prints `pattern`, it exits, or `timeoutMs` passes; then stops it.
 * Every console byte is also appended to `onData` (the console log).
 */
export async function runUntil(args: string[], pattern: RegExp, timeoutMs: number, onData?: (chunk: string) => void): Promise<ConsoleResult> {
  const t0 = Date.now();
  const child = startQemu(args);
  let output = '';
  let settle!: (r: Omit<ConsoleResult, 'seconds' | 'output'>) => void;
  const done = new Promise<Omit<ConsoleResult, 'seconds' | 'output'>>((resolve) => (settle = resolve));
  child.all?.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    output += text;
    onData?.(text);
    // Colour codes and carriage returns sit between words on a systemd console.
    if (pattern.test(output.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r/g, ''))) settle({ matched: true });
  });
  const timer = setTimeout(() => settle({ matched: false, reason: `no match within ${Math.round(timeoutMs / 1000)}s` }), timeoutMs);
  child.then(
    (r) => settle({ matched: false, reason: `qemu exited (${r.exitCode ?? r.signal ?? 'unknown'}) before the console matched` }),
    () => settle({ matched: false, reason: 'qemu failed to start' }),
  );
  const result = await done;
  clearTimeout(timer);
  child.kill('SIGKILL');
  await child.catch(() => undefined);
  return { ...result, seconds: (Date.now() - t0) / 1000, output };
}
