// What this host can do: is KVM really usable, which customization backend fits.
import { accessSync, constants, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { writeFileAtomic } from '../core/fsutil.js';
import { log } from '../core/log.js';
import { checkInterrupted } from '../core/interrupt.js';
import { bootId } from '../core/proc.js';
import { probeArgs, runUntil } from './qemu-system.js';
import { haveTool } from './run.js';

let kvmAnswer: Promise<boolean> | undefined;

function hostKernel(): string | undefined {
  if (!existsSync('/boot')) return undefined;
  const kernels = readdirSync('/boot').filter((f) => f.startsWith('vmlinuz-')).sort();
  return kernels.length > 0 ? `/boot/${kernels[kernels.length - 1]}` : undefined;
}

// The answer holds until the host reboots; cached under /run (cleared at boot) and keyed by the
// boot id, because the probe costs up to PROBE_MS of every command that needs it.
const PROBE_MS = 10_000;
const CACHE_DIR = '/run/ost-images';

function cached(kernel: string): boolean | undefined {
  try {
    const c = JSON.parse(readFileSync(`${CACHE_DIR}/kvm-probe.json`, 'utf8')) as { bootId: string; kernel: string; usable: boolean };
    return c.bootId === bootId() && c.kernel === kernel ? c.usable : undefined;
  } catch {
    return undefined;
  }
}

function remember(kernel: string, usable: boolean): void {
  try {
    mkdirSync(CACHE_DIR, { recursive: true });
    // Atomic: another ost-images on this host may be reading it at this moment.
    writeFileAtomic(`${CACHE_DIR}/kvm-probe.json`, JSON.stringify({ bootId: bootId(), kernel, usable }));
  } catch {
    // Not root or no /run: probe again next time.
  }
}

/**
 * `/dev/kvm` existing and opening is not enough: on our builders a guest started with -accel kvm
 * hangs right after the BIOS. So boot the host's kernel without a disk and wait a few seconds for
 * "Linux version" on the serial console. Asked once per process.
 */
export function kvmUsable(): Promise<boolean> {
  kvmAnswer ??= (async () => {
    // An override for hosts where the probe cannot run or its answer is known.
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
    const known = cached(kernel);
    if (known !== undefined) {
      log.debug(`KVM: ${known ? 'usable' : 'not usable'} (probed earlier since this boot)`);
      return known;
    }
    const r = await runUntil(probeArgs(kernel, 'kvm'), /Linux version/, PROBE_MS);
    // An interrupted probe answers nothing: do not remember "unusable" until the next reboot.
    checkInterrupted();
    log.info(`KVM probe: ${r.matched ? `usable (guest kernel started in ${r.seconds.toFixed(1)}s)` : `not usable (${r.reason}); using TCG`}`);
    remember(kernel, r.matched);
    return r.matched;
  })();
  return kvmAnswer;
}

export type BackendName = 'chroot' | 'guestfs';

/** Why this host cannot attach and mount images (not root, no FUSE or loop devices), or undefined when it can. */
export function mountingImpossible(): string | undefined {
  if (process.getuid?.() !== 0) return 'the chroot backend needs root (loop devices, mounts)';
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing';
  if (!existsSync('/dev/loop-control')) return '/dev/loop-control is missing';
  return undefined;
}

export async function chrootPossible(): Promise<{ ok: boolean; why?: string }> {
  const why = mountingImpossible();
  if (why) return { ok: false, why };
  if (!(await haveTool('qemu-storage-daemon'))) return { ok: false, why: 'qemu-storage-daemon is not installed' };
  return { ok: true };
}

/** The programs of the guestfs backend (libguestfs's tools). */
export const GUESTFS_TOOLS = ['virt-customize', 'virt-cat', 'virt-sparsify'] as const;

/**
 * auto: with working KVM and libguestfs's tools installed, guestfs (isolated, and fast when the
 * appliance is accelerated); otherwise chroot when possible (the guest's package manager at
 * native speed instead of emulated), else guestfs under TCG. (Where the chroot backend can run,
 * the check before a build asks only for its programs, libguestfs's being optional.)
 */
export async function chooseBackend(requested: 'auto' | BackendName): Promise<BackendName> {
  if (requested !== 'auto') return requested;
  const kvm = await kvmUsable();
  if (kvm && (await Promise.all(GUESTFS_TOOLS.map((t) => haveTool(t)))).every(Boolean)) return 'guestfs';
  const c = await chrootPossible();
  if (c.ok) return 'chroot';
  if (kvm) return 'guestfs'; // libguestfs's tools are missing: the check before the build says which.
  log.warn(`KVM is not usable and ${c.why}: using guestfs under TCG (slow)`);
  return 'guestfs';
}
