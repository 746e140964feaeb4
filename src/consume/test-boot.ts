// Boots an image as an ordinary VM (BIOS, its own bootloader and kernel, no external kernel) and
// reads the serial console until the guest reaches userspace; then, when the chain's base ships a
// root key pair, logs in over SSH with it, as a consumer would. The console log is kept on failure
// and its tail printed, because "did not boot" alone tells nobody anything.
import { appendFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { StepError } from '../core/errors.js';
import { kvmUsable } from '../tools/host.js';
import { checkInterrupted } from '../core/interrupt.js';
import { log } from '../core/log.js';
import * as qemuImg from '../tools/qemu-img.js';
import { bootArgs, startVm } from '../tools/qemu-system.js';
import { consoleTail, freePort, waitForSsh } from './guest-ssh.js';

/**
 * A getty's login prompt (`debian13 login: `), or systemd announcing the multi-user target.
 *
 * The prompt need not end its line. The kernel writes its messages to the same serial console with
 * no newline of its own before them, so a module loaded just after the getty starts lands on the
 * prompt's line: debian13 under TCG prints `debian13 login: [   93.501615] powernow_k8: Power state
 * transitions not supported` (powernow_k8 and kvm_amd, loaded for QEMU's default AMD CPU model
 * under TCG, announce themselves at about the time the serial getty starts). And systemd prints no
 * more status lines once that getty holds the console, so "Reached target ... Multi-User System"
 * never comes when the target is reached after the getty started (engine-installed: PostgreSQL
 * starts later; 17 of 17 such debian13 boots here). The old pattern, `login:\s*$`, therefore
 * matched only when the prompt happened to be the last byte of a chunk read from QEMU's stdout;
 * when the prompt and the kernel line arrived in one read, nothing ever matched and a guest that
 * had booted was reported as "did not reach userspace" after the whole timeout.
 */
export const USERSPACE = /((^|\S )login:(\s|$))|(Reached target .*Multi-User System)/m;

export interface BootResult {
  image: string;
  accel: 'kvm' | 'tcg';
  booted: boolean;
  seconds: number;
  /** Seconds until an SSH login with the shipped key worked; absent when not tried. */
  sshSeconds?: number;
  /** What `hostname` printed over SSH. */
  sshHostname?: string;
  consoleLog: string;
}

/** The root key shipped with the chain's base image (`base-12-R.qcow2` -> `base-12-R.id_ed25519`). */
export async function shippedKey(image: string): Promise<string | undefined> {
  const chain = await qemuImg.chain(image);
  const bottom = chain[chain.length - 1]!.filename;
  const key = bottom.replace(/\.qcow2$/, '.id_ed25519');
  return key !== bottom && existsSync(key) ? key : undefined;
}

export async function testBoot(image: string, opts: { timeoutSec: number; consoleLog: string; memMiB?: number; ssh?: boolean }): Promise<BootResult> {
  const accel = (await kvmUsable()) ? 'kvm' : 'tcg';
  const key = opts.ssh === false ? undefined : await shippedKey(image);
  const sshPort = key ? await freePort() : undefined;
  mkdirSync(path.dirname(opts.consoleLog), { recursive: true });
  writeFileSync(opts.consoleLog, '');
  const name = path.basename(image);
  log.info(`test-boot ${name} under ${accel.toUpperCase()} (timeout ${opts.timeoutSec}s, console: ${opts.consoleLog})`);
  const t0 = Date.now();
  const vm = await startVm(bootArgs(image, { accel, memMiB: opts.memMiB ?? 1024, smp: 2, sshPort }), (chunk) => appendFileSync(opts.consoleLog, chunk));
  try {
    const r = await vm.waitFor(USERSPACE, opts.timeoutSec * 1000);
    if (!r.matched) {
      checkInterrupted(); // Ctrl-C stops the VM: that is an interrupt, not a failed boot.
      throw new StepError(`${name} did not reach userspace: ${r.reason}. Console log kept at ${opts.consoleLog}; its last lines:\n${consoleTail(r.output)}`);
    }
    log.info(`test-boot: ${name} reached userspace in ${r.seconds.toFixed(1)}s`);
    const result: BootResult = { image, accel, booted: true, seconds: r.seconds, consoleLog: opts.consoleLog };
    if (!key || !sshPort) {
      log.info(`test-boot: no root key shipped with the chain's base; SSH login not tried`);
      return result;
    }
    // sshd may start a little after the login prompt; keep trying within the same deadline.
    const w = await waitForSsh({ port: sshPort, key, startedAt: t0, deadline: t0 + opts.timeoutSec * 1000, intervalMs: 2000 });
    if (!w.ok) throw new StepError(`${name} booted but SSH login with ${key} failed: ${w.reason}. Console log kept at ${opts.consoleLog}`);
    result.sshSeconds = w.seconds;
    result.sshHostname = w.hostname;
    log.info(`test-boot: logged in as root over SSH with ${path.basename(key)} after ${result.sshSeconds.toFixed(1)}s (hostname ${result.sshHostname})`);
    return result;
  } finally {
    await vm.stop();
  }
}

/**
 * testBoot with the console log in the store (`<store>/console/<image>.log`) unless one is given.
 * The log matters when a boot fails; a passing boot's log is only kept when asked for.
 */
export async function bootImage(image: string, timeoutSec: number, consoleLog: string | undefined, storeDir: string, sshLogin = true): Promise<BootResult> {
  const logFile = consoleLog ?? path.join(storeDir, 'console', `${path.basename(image)}.log`);
  const r = await testBoot(image, { timeoutSec, consoleLog: logFile, ssh: sshLogin });
  if (!consoleLog && existsSync(logFile)) rmSync(logFile);
  return r;
}
