// Boots an image as an ordinary VM (BIOS, its own bootloader and kernel, no external kernel) and
// reads the serial console until the guest reaches userspace. The console log is kept on failure
// and its tail printed, because "did not boot" alone tells nobody anything.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { StepError } from '../errors.js';
import { kvmUsable } from '../host.js';
import { log } from '../log.js';
import { bootArgs, runUntil } from '../tools/qemu-system.js';

/** A getty's login prompt, or systemd announcing the multi-user target. */
export const USERSPACE = /(login:\s*$)|(Reached target .*Multi-User System)/m;

export interface BootResult {
  image: string;
  accel: 'kvm' | 'tcg';
  booted: boolean;
  seconds: number;
  consoleLog: string;
}

export async function testBoot(image: string, opts: { timeoutSec: number; consoleLog: string; memMiB?: number }): Promise<BootResult> {
  const accel = (await kvmUsable()) ? 'kvm' : 'tcg';
  mkdirSync(path.dirname(opts.consoleLog), { recursive: true });
  writeFileSync(opts.consoleLog, '');
  log.info(`test-boot ${path.basename(image)} under ${accel.toUpperCase()} (timeout ${opts.timeoutSec}s, console: ${opts.consoleLog})`);
  const r = await runUntil(bootArgs(image, { accel, memMiB: opts.memMiB ?? 1024, smp: 2 }), USERSPACE, opts.timeoutSec * 1000, (chunk) =>
    appendFileSync(opts.consoleLog, chunk),
  );
  if (!r.matched) {
    const tail = r.output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').split('\n').slice(-25).join('\n');
    throw new StepError(`${path.basename(image)} did not reach userspace: ${r.reason}. Console log kept at ${opts.consoleLog}; its last lines:\n${tail}`);
  }
  log.info(`test-boot: ${path.basename(image)} reached userspace in ${r.seconds.toFixed(1)}s`);
  return { image, accel, booted: true, seconds: r.seconds, consoleLog: opts.consoleLog };
}
