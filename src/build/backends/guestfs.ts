// The guestfs backend: virt-customize runs the steps inside libguestfs's appliance VM, isolated
// from the host and runnable without root. Without usable KVM the appliance is emulated (TCG), so
// package installs are many times slower than with the chroot backend.
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { kvmUsable } from '../../host.js';
import { log } from '../../log.js';
import { customize, sparsifyInPlace, type GuestfsOp } from '../../tools/virt-customize.js';
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
    // The package list is written inside the guest and copied out by the same virt-customize run
    // (a second appliance boot just to read it would cost minutes under TCG).
    const listDir = '/tmp/ost-images-packages';
    const quoted = cmds.listInstalled.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    ops.push({ op: 'run-command', command: `mkdir -p ${listDir} && ${quoted} > ${listDir}/list` });
    ops.push({ op: 'copy-out', from: listDir, to: ctx.work });
    ops.push({ op: 'run-command', command: `rm -rf ${listDir}` });
    const kvm = await kvmUsable();
    log.info(`${ctx.layer.name}: virt-customize (${ops.length} operations, ${kvm ? 'KVM' : 'TCG'})`);
    await customize(ctx.image, ops, kvm, { onLine: (l) => log.debug(`  | ${l}`) });
    log.info(`${ctx.layer.name}: virt-sparsify --in-place`);
    await sparsifyInPlace(ctx.image, kvm);
    const list = path.join(ctx.work, 'ost-images-packages', 'list');
    return existsSync(list) ? readFileSync(list, 'utf8') : undefined;
  },
};
