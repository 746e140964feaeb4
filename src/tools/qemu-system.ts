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
/** What every VM here has: accelerator, size, no display, serial console on stdio, no reboot. */
function machineArgs(o: BootOptions): string[] {
  return [
    '-accel', o.accel,
    ...(o.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', String(o.memMiB),
    '-smp', String(o.smp),
    '-nographic',
    '-no-reboot',
    '-serial', 'mon:stdio',
  ];
}

export function bootArgs(image: string, o: BootOptions & { sshPort?: number }): string[] {
  return [
    ...machineArgs(o),
    '-drive', `file=${image},format=qcow2,if=virtio,snapshot=on`,
    // User networking, restricted: the guest gets an address (DHCP) but no route anywhere, so a boot
    // test shows the image comes up and makes its own host keys with no network to lean on. With
    // sshPort the guest's sshd is reachable on that port of 127.0.0.1 only.
    '-nic', `user,model=virtio-net-pci,restrict=on${o.sshPort ? `,hostfwd=tcp:127.0.0.1:${o.sshPort}-:22` : ''}`,
  ];
}

/**
 * An unattended installation: the installer's kernel and initrd booted directly (so the kernel
 * command line carries the serial console and the kickstart location), the ISO as a CD-ROM for
 * stage 2 and packages, the kickstart on a second CD-ROM labelled OEMDRV, the new disk written in
 * place. -no-reboot: the kickstart's final poweroff/reboot ends QEMU.
 */
export function installArgs(o: BootOptions & { disk: string; iso: string; ksIso: string; kernel: string; initrd: string; append: string }): string[] {
  return [
    ...machineArgs(o),
    '-drive', `file=${o.disk},format=qcow2,if=virtio`,
    '-drive', `file=${o.iso},format=raw,media=cdrom,readonly=on`,
    '-drive', `file=${o.ksIso},format=raw,media=cdrom,readonly=on`,
    '-kernel', o.kernel,
    '-initrd', o.initrd,
    '-append', o.append,
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

/** A running VM whose serial console is watched. */
export interface Vm {
  /** Resolves when the console shows `pattern`, the VM exits, or `timeoutMs` passes. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<ConsoleResult>;
  stop(): Promise<void>;
}

const plain = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');

export async function startVm(args: string[], onData?: (chunk: string) => void): Promise<Vm> {
  const t0 = Date.now();
  const { child } = await startQemu(args);
  let output = '';
  let exited: string | undefined;
  const listeners = new Set<() => void>();
  child.all?.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    output += text;
    onData?.(text);
    listeners.forEach((l) => l());
  });
  child.then(
    (r) => (exited = `qemu exited (${r.exitCode ?? r.signal ?? 'unknown'}) before the console matched`),
    () => (exited = 'qemu failed to start or was killed'),
  ).finally(() => listeners.forEach((l) => l()));
  return {
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve) => {
        const finish = (matched: boolean, reason?: string): void => {
          listeners.delete(check);
          clearTimeout(timer);
          resolve({ matched, reason, seconds: (Date.now() - t0) / 1000, output });
        };
        // Colour codes and carriage returns sit between words on a systemd console.
        const check = (): void => {
          if (pattern.test(plain(output))) finish(true);
          else if (exited) finish(false, exited);
        };
        const timer = setTimeout(() => finish(false, `no match within ${Math.round(timeoutMs / 1000)}s`), timeoutMs);
        listeners.add(check);
        check();
      });
    },
    async stop() {
      child.kill('SIGKILL');
      await child.catch(() => undefined);
    },
  };
}

/** Runs qemu until its console prints `pattern`, it exits, or `timeoutMs` passes; then stops it. */
export async function runUntil(args: string[], pattern: RegExp, timeoutMs: number, onData?: (chunk: string) => void): Promise<ConsoleResult> {
  const vm = await startVm(args, onData);
  try {
    return await vm.waitFor(pattern, timeoutMs);
  } finally {
    await vm.stop();
  }
}
