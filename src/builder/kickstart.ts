// Kickstart bases, as the original pipeline made them: an Enterprise Linux installer ISO run
// unattended under QEMU with a kickstart file rendered from the layer's template (root SSH key,
// host name, disk size, repositories, serial console). The console goes to a log; on failure or
// timeout the error carries its tail. Afterwards the installed disk is opened like any other base
// for the layer's steps and its package list, and sealed (seal.ts).
import { readFileSync, mkdirSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import type { KickstartBase } from '../definitions/types.js';
import { StepError } from '../core/errors.js';
import { checkInterrupted } from '../core/interrupt.js';
import { kvmUsable } from '../tools/host.js';
import { log } from '../core/log.js';
import { withScope } from '../core/scope.js';
import * as qemuImg from '../tools/qemu-img.js';
import { installArgs, startVm } from '../tools/qemu-system.js';
import * as xorriso from '../tools/xorriso.js';
import type { BaseContext } from './base-context.js';
import { prepareChroot } from './chroot-env.js';
import { attachDisk, chrootDevices, mountRoot } from './disk.js';
import { expectedSha256, fetchCached } from './download.js';
import { sealTree } from './seal.js';
import { listGuestPackages, runStepsInChroot } from './steps.js';
import { DONE_MARKER, SERIAL, kickstartVars, renderKickstart } from '../definitions/kickstart-template.js';

/** The installer's kernel command line: serial console, text mode, stage 2 from the ISO, kickstart from OEMDRV. */
export function installerCmdline(isoLabel: string): string {
  return [SERIAL, 'inst.text', `inst.stage2=hd:LABEL=${isoLabel.replace(/ /g, '\\x20')}`, 'inst.ks=hd:LABEL=OEMDRV:/ks.cfg', 'inst.notmux'].join(' ');
}

function tail(file: string, lines = 40): string {
  return readFileSync(file, 'utf8').replace(/\r/g, '').split('\n').slice(-lines).join('\n');
}

export async function buildKickstartBase(ctx: BaseContext, base: KickstartBase): Promise<string | undefined> {
  const { set, layer } = ctx;
  const { file: iso } = await fetchCached(base.iso.url, await expectedSha256(base.iso), ctx.downloads);
  checkInterrupted();
  const work = path.join(ctx.work, 'kickstart');
  mkdirSync(path.join(work, 'oemdrv'), { recursive: true });
  const ks = renderKickstart(readFileSync(base.template.path, 'utf8'), kickstartVars(set, base, ctx.sshPublicKey));
  writeFileSync(path.join(work, 'oemdrv', 'ks.cfg'), ks);
  const ksIso = path.join(work, 'oemdrv.iso');
  await xorriso.makeIso(path.join(work, 'oemdrv'), ksIso, 'OEMDRV');
  const kernel = path.join(work, 'vmlinuz');
  const initrd = path.join(work, 'initrd.img');
  await xorriso.extract(iso, '/images/pxeboot/vmlinuz', kernel);
  await xorriso.extract(iso, '/images/pxeboot/initrd.img', initrd);
  const label = await xorriso.volumeId(iso);
  await qemuImg.create(ctx.image, { size: set.image.sizeBytes });

  mkdirSync(ctx.consoleDir, { recursive: true });
  const consoleLog = path.join(ctx.consoleDir, `${layer.name}-install-${path.basename(ctx.work)}.log`);
  writeFileSync(consoleLog, '');
  const accel = (await kvmUsable()) ? 'kvm' : 'tcg';
  log.info(`${layer.name}: installing from ${path.basename(base.iso.url)} with the kickstart (${accel.toUpperCase()}, timeout ${base.timeoutSec}s, console: ${consoleLog})`);
  const vm = await startVm(
    installArgs({ accel, memMiB: 2048, smp: 2, disk: ctx.image, iso, ksIso, kernel, initrd, append: installerCmdline(label) }),
    (chunk) => appendFileSync(consoleLog, chunk),
  );
  try {
    const done = await vm.waitFor(new RegExp(DONE_MARKER), base.timeoutSec * 1000);
    if (!done.matched) {
      checkInterrupted();
      throw new StepError(`${layer.name}: the unattended install did not finish: ${done.reason}. Console log kept at ${consoleLog}; its last lines:\n${tail(consoleLog)}`);
    }
    // The kickstart powers off after %post; QEMU exits (-no-reboot) once the disk is flushed.
    const off = await vm.waitFor(/(?!)/, 300_000);
    if (!off.reason?.includes('exited (0)')) throw new StepError(`${layer.name}: the installer did not power off cleanly: ${off.reason}. Console log: ${consoleLog}`);
  } finally {
    await vm.stop();
  }
  return withScope(async (scope) => {
    const disk = await attachDisk(scope, ctx.image, ctx.work);
    const part = disk.partitions[disk.partitions.length - 1];
    if (!part) throw new StepError(`${layer.name}: the installed disk has no partition`);
    const root = await mountRoot(scope, part, ctx.work);
    const listText = await withScope(async (guest) => {
      await prepareChroot(guest, root, await chrootDevices(disk, part));
      await runStepsInChroot(root, set.distro.family, layer.steps, layer.name, ctx.epoch);
      return listGuestPackages(root, set.distro.family, layer.name);
    });
    // The installer made host keys, logs and a random seed: out, as from every base.
    await sealTree(root, { layer: layer.name, epoch: ctx.epoch, firstBoot: true });
    return listText;
  });
}
