// The guestfs backend: virt-customize runs the steps inside libguestfs's appliance VM, isolated
// from the host and runnable without root. Without usable KVM the appliance is emulated (TCG), so
// package installs are many times slower than with the chroot backend. Every guest command runs
// with the layer's SOURCE_DATE_EPOCH, and the same virt-customize run ends with the sysprep
// script (sysprep.ts: the rules, clamped times, the private-key check). Where the host can mount
// images (root), the chroot backend's seal (seal.ts) then runs on the result too: it also
// normalizes the formats that record times (Java key stores), which the script cannot.
import { copyFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chrootPossible, kvmUsable } from '../../tools/host.js';
import { withScope } from '../../core/scope.js';
import { attachDisk, mountRoot, rootDevice } from '../disk.js';
import { sealTree } from '../seal.js';
import { log } from '../../core/log.js';
import { catFile, customize, sparsifyInPlace, type GuestfsOp } from '../../tools/virt-customize.js';

import { guestCommands } from '../guest.js';
import { sysprepScript } from '../sysprep.js';
import type { Backend, CustomizeContext } from './types.js';

const GUEST_PACKAGE_LIST = '/var/lib/ost-images/packages';

export const guestfsBackend: Backend = {
  name: 'guestfs',
  async customize(ctx: CustomizeContext): Promise<string | undefined> {
    const ops: GuestfsOp[] = [];
    const cmds = guestCommands(ctx.set.distro.family);
    // Validated package names and the toolchain's own words only: nothing here needs quoting.
    const env = `env SOURCE_DATE_EPOCH=${ctx.epoch} DEBIAN_FRONTEND=noninteractive`;
    const inGuest = (argv: string[]) => `${env} ${argv.join(' ')}`;
    for (const step of ctx.layer.steps) {
      switch (step.kind) {
        case 'install':
          ops.push({ op: 'run-command', command: `${inGuest(cmds.refresh)} && ${inGuest(cmds.install(step.packages))}` });
          break;
        case 'upgrade':
          ops.push({ op: 'run-command', command: `${inGuest(cmds.refresh)} && ${inGuest(cmds.upgrade)}` });
          break;
        case 'run': {
          const staged = path.join(ctx.work, `run-${step.index}.sh`);
          copyFileSync(step.path, staged);
          ops.push({ op: 'upload', from: staged, to: `/tmp/ost-images-step-${step.index}.sh`, mode: 0o700 });
          ops.push({ op: 'run-command', command: `${inGuest(['/bin/sh', `/tmp/ost-images-step-${step.index}.sh`])} && rm -f /tmp/ost-images-step-${step.index}.sh` });
          break;
        }
        case 'install-local': {
          const staged: string[] = [];
          step.files.forEach((f, i) => {
            const local = path.join(ctx.work, `local-${step.index}-${i}${path.extname(f.name)}`);
            copyFileSync(f.path, local);
            staged.push(`/tmp/${path.basename(local)}`);
            ops.push({ op: 'upload', from: local, to: staged[i]!, mode: 0o644 });
          });
          ops.push({ op: 'run-command', command: `${inGuest(cmds.refresh)} && ${inGuest(cmds.installLocal(staged))} && rm -f ${staged.join(' ')}` });
          break;
        }
        case 'upload': {
          // virt-customize splits --upload at ':'; stage under a name without one.
          const staged = path.join(ctx.work, `upload-${step.index}`);
          copyFileSync(step.path, staged);
          ops.push({ op: 'upload', from: staged, to: step.to, mode: step.mode });
          break;
        }
      }
    }
    for (const argv of cmds.clean) ops.push({ op: 'run-command', command: inGuest(argv) });
    // The package list is written inside the guest by the same virt-customize run and read back
    // with virt-cat (this virt-customize has no --copy-out). It stays in the image, a few KiB: the
    // image's own record of what it holds.
    const quoted = cmds.listInstalled.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    ops.push({ op: 'run-command', command: `mkdir -p ${path.posix.dirname(GUEST_PACKAGE_LIST)} && ${quoted} > ${GUEST_PACKAGE_LIST}` });
    // Last, so nothing after it writes a time or a key: fails the run naming what may not stay.
    const sysprep = path.join(ctx.work, 'sysprep.sh');
    writeFileSync(sysprep, sysprepScript(ctx.epoch));
    ops.push({ op: 'run', script: sysprep });
    const kvm = await kvmUsable();
    log.info(`${ctx.layer.name}: virt-customize (${ops.length} operations, ${kvm ? 'KVM' : 'TCG'})`);
    await customize(ctx.image, ops, kvm, { onLine: (l) => log.debug(`  | ${l}`) });
    const list = await catFile(ctx.image, GUEST_PACKAGE_LIST, kvm);
    if ((await chrootPossible()).ok) {
      await withScope(async (scope) => {
        const disk = await attachDisk(scope, ctx.image, ctx.work);
        await sealTree(await mountRoot(scope, rootDevice(disk), ctx.work), { layer: ctx.layer.name, epoch: ctx.epoch, firstBoot: false });
      });
    } else {
      log.warn(`${ctx.layer.name}: not root: sealed inside the appliance only (Java key stores keep their build times)`);
    }
    log.info(`${ctx.layer.name}: virt-sparsify --in-place`);
    await sparsifyInPlace(ctx.image, kvm);
    return list;
  },
};
