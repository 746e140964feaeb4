// The guestfs backend: virt-customize runs the steps inside libguestfs's appliance VM, isolated
// from the host and runnable without root. Without usable KVM the appliance is emulated (TCG), so
// package installs are many times slower than with the chroot backend.
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { kvmUsable } from '../../host.js';
import { log } from '../../log.js';
import { catFile, customize, sparsifyInPlace, type GuestfsOp } from '../../tools/virt-customize.js';

const GUEST_PACKAGE_LIST = '/var/lib/ost-images/packages';
import { guestCommands } from '../guest.js';
import type { Backend, CustomizeContext } from './types.js';

export const guestfsBackend: Backend = {
  name: 'guestfs',
  async customize(ctx: CustomizeContext): Promise<string | undefined> {
    const ops: GuestfsOp[] = [];
    for (const step of ctx.layer.steps) {
      switch (step.kind) {
        case 'install':
          ops.push({ op: 'install', packages: step.packages });
          break;
        case 'upgrade':
          ops.push({ op: 'update' });
          break;
        case 'run':
          ops.push({ op: 'run', script: step.path });
          break;
        case 'install-local': {
          const inGuest: string[] = [];
          step.files.forEach((f, i) => {
            const staged = path.join(ctx.work, `local-${step.index}-${i}${path.extname(f.name)}`);
            copyFileSync(f.path, staged);
            inGuest.push(`/tmp/${path.basename(staged)}`);
            ops.push({ op: 'upload', from: staged, to: inGuest[i]!, mode: 0o644 });
          });
          const cmds = guestCommands(ctx.set.distro.family);
          ops.push({ op: 'run-command', command: [...cmds.refresh, '&&', ...cmds.installLocal(inGuest), '&&', 'rm', '-f', ...inGuest].join(' ') });
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
    const cmds = guestCommands(ctx.set.distro.family);
    for (const argv of cmds.clean) ops.push({ op: 'run-command', command: argv.join(' ') });
    // The package list is written inside the guest by the same virt-customize run and read back
    // with virt-cat (this virt-customize has no --copy-out). It stays in the image, a few KiB: the
    // image's own record of what it holds.
    const quoted = cmds.listInstalled.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    ops.push({ op: 'run-command', command: `mkdir -p ${path.posix.dirname(GUEST_PACKAGE_LIST)} && ${quoted} > ${GUEST_PACKAGE_LIST}` });
    const kvm = await kvmUsable();
    log.info(`${ctx.layer.name}: virt-customize (${ops.length} operations, ${kvm ? 'KVM' : 'TCG'})`);
    await customize(ctx.image, ops, kvm, { onLine: (l) => log.debug(`  | ${l}`) });
    log.info(`${ctx.layer.name}: virt-sparsify --in-place`);
    const list = await catFile(ctx.image, GUEST_PACKAGE_LIST, kvm);
    await sparsifyInPlace(ctx.image, kvm);
    return list;
  },
};
