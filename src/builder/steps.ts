// Runs a layer's steps inside a prepared chroot. Used by the chroot backend and by the base build
// (whose own steps run right after mmdebstrap).
import { constants, copyFileSync, lstatSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { DistroFamily, Step } from '../definitions/types.js';
import { StepError, ToolError } from '../core/errors.js';
import { checkInterrupted } from '../core/interrupt.js';
import { log } from '../core/log.js';
import { inChroot } from '../tools/chroot.js';
import { guestCommands } from './guest.js';

const quietLine = (line: string): void => log.debug(`  | ${line}`);

/**
 * Files are staged in the guest's /tmp and put in place by the guest's own cp, so paths are
 * resolved inside the guest: a symlink in the image can never redirect a write onto the host.
 */
function stage(root: string, file: string, name: string): string {
  const tmp = path.join(root, 'tmp');
  const st = lstatSync(tmp, { throwIfNoEntry: false });
  if (!st || st.isSymbolicLink() || !st.isDirectory()) throw new StepError(`guest /tmp is missing or not a directory in ${root}`);
  // The image may hold a symlink at that name; never follow it from the host.
  const dest = path.join(tmp, name);
  rmSync(dest, { force: true });
  copyFileSync(file, dest, constants.COPYFILE_EXCL);
  return `/tmp/${name}`;
}

/**
 * The environment of everything a layer build runs in the guest: SOURCE_DATE_EPOCH, which dpkg,
 * initramfs-tools, useradd and Python's byte-compiler take as "now" for what they record.
 */
export function guestEnv(epoch: number): Record<string, string> {
  return { SOURCE_DATE_EPOCH: String(epoch) };
}

export async function runStepsInChroot(root: string, family: DistroFamily, steps: Step[], layer: string, epoch: number): Promise<void> {
  const cmds = guestCommands(family);
  const env = guestEnv(epoch);
  let refreshed = false;
  const refresh = async (): Promise<void> => {
    if (refreshed) return;
    await inChroot(root, cmds.refresh, { onLine: quietLine, env });
    refreshed = true;
  };
  for (const step of steps) {
    checkInterrupted();
    const label = `${layer}: step ${step.index + 1}/${steps.length}`;
    switch (step.kind) {
      case 'install':
        log.info(`${label}: install ${step.packages.join(' ')}`);
        await refresh();
        await inChroot(root, cmds.install(step.packages), { onLine: quietLine, env });
        break;
      case 'upgrade':
        log.info(`${label}: full upgrade`);
        // Sources may have changed in an earlier step (the upgrade layer adds suites).
        refreshed = false;
        await refresh();
        await inChroot(root, cmds.upgrade, { onLine: quietLine, env });
        break;
      case 'run': {
        log.info(`${label}: run ${step.script}`);
        const inGuest = stage(root, step.path, `ost-images-step-${step.index}.sh`);
        try {
          await inChroot(root, ['/bin/sh', inGuest], { onLine: quietLine, env });
        } finally {
          rmSync(path.join(root, inGuest), { force: true });
        }
        refreshed = false;
        break;
      }
      case 'install-local': {
        log.info(`${label}: install local ${step.files.map((f) => f.name).join(' ')}`);
        await refresh();
        // Staged under fixed names: the user's file names never reach a guest command line.
        const staged = step.files.map((f, i) => stage(root, f.path, `ost-images-local-${i}${path.extname(f.name)}`));
        try {
          await inChroot(root, cmds.installLocal(staged), { onLine: quietLine, env });
        } finally {
          for (const s of staged) rmSync(path.join(root, s), { force: true });
        }
        break;
      }
      case 'upload': {
        log.info(`${label}: upload ${step.from} -> ${step.to}`);
        const inGuest = stage(root, step.path, `ost-images-upload-${step.index}`);
        try {
          await inChroot(root, ['mkdir', '-p', path.posix.dirname(step.to)], { env });
          await inChroot(root, ['cp', inGuest, step.to], { env });
          await inChroot(root, ['chmod', step.mode.toString(8), step.to], { env });
        } finally {
          rmSync(path.join(root, inGuest), { force: true });
        }
        refreshed = false;
        break;
      }
    }
  }
  await cleanGuest(root, family, env);
}

/** The guest's installed packages, or undefined (with a warning) when it cannot say. */
export async function listGuestPackages(root: string, family: DistroFamily, layer: string): Promise<string | undefined> {
  try {
    return await inChroot(root, guestCommands(family).listInstalled);
  } catch (err) {
    if (!(err instanceof ToolError)) throw err;
    log.warn(`${layer}: cannot list the guest's packages (${err.message.split('\n')[0]}); the layer records no package list`);
    return undefined;
  }
}

/** Package caches and index files are rebuilt on demand; keeping them only bloats the layer. */
export async function cleanGuest(root: string, family: DistroFamily, env: Record<string, string> = {}): Promise<void> {
  for (const argv of guestCommands(family).clean) await inChroot(root, argv, { env });
}
