// What this host can do: is KVM really usable, which customization backend fits.
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { log } from './log.js';
import { probeArgs, runUntil } from './tools/qemu-system.js';
import { haveTool } from './tools/run.js';

let kvmAnswer: Promise<boolean> | undefined;

function hostKernel(): string | undefined {
  if (!existsSync('/boot')) return undefined;
  const kernels = readdirSync('/boot').filter((f) => f.startsWith('vmlinuz-')).sort();
  return kernels.length > 0 ? `/boot/${kernels[kernels.length - 1]}` : undefined;
}

/**
 * `/dev/kvm` existing and opening is not enough: on our builders a guest started with -accel kvm
 * hangs right after the BIOS. So boot the host's kernel without a disk and wait a few seconds for
 * "Linux version" on the serial console. Asked once per process.
 */
export function kvmUsable(): Promise<boolean> {
  kvmAnswer ??= (async () => {
    if (process.env.OST_IMAGES_KVM === '0') return false;
    if (process.env.OST_IMAGES_KVM === '1') return true;
    try {
      accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    } catch {
      log.debug('KVM: /dev/kvm missing or not accessible');
      return false;
    }
    const kernel = hostKernel();
    if (!kernel || !(await haveTool('qemu-system-x86_64'))) {
      log.debug('KVM: no host kernel or qemu-system to probe with; assuming unusable');
      return false;
    }
    const r = await runUntil(probeArgs(kernel, 'kvm'), /Linux version/, 15000);
    log.info(`KVM probe: ${r.matched ? `usable (guest kernel started in ${r.seconds.toFixed(1)}s)` : `not usable (${r.reason}); using TCG`}`);
    return r.matched;
  })();
  return kvmAnswer;
}

export type BackendName = 'chroot' | 'guestfs';

export async function chrootPossible(): Promise<{ ok: boolean; why?: string }> {
  if (process.getuid?.() !== 0) return { ok: false, why: 'the chroot backend needs root (loop devices, mounts)' };
  if (!existsSync('/dev/fuse')) return { ok: false, why: '/dev/fuse is missing' };
  if (!existsSync('/dev/loop-control')) return { ok: false, why: '/dev/loop-control is missing' };
  if (!(await haveTool('qemu-storage-daemon'))) return { ok: false, why: 'qemu-storage-daemon is not installed' };
  return { ok: true };
}

/**
 * auto: with working KVM, guestfs (isolated, and fast when the appliance is accelerated);
 * without it, chroot when possible (the guest's package manager at native speed instead of
 * emulated), else guestfs under TCG.
 */
export async function chooseBackend(requested: 'auto' | BackendName): Promise<BackendName> {
  if (requested !== 'auto') return requested;
  if (await kvmUsable()) return 'guestfs';
  const c = await chrootPossible();
  if (c.ok) return 'chroot';
  log.warn(`KVM is not usable and ${c.why}: using guestfs under TCG (slow)`);
  return 'guestfs';
}
