// The chroot backend: the overlay attached through qemu-storage-daemon/FUSE/loop and mounted, the
// guest's own package manager run at native speed, then the tree sealed (seal.ts). Needs root; no
// KVM needed.
import { withScope } from '../../core/scope.js';
import { prepareChroot } from '../chroot-env.js';
import { attachDisk, chrootDevices, mountRoot, rootDevice } from '../disk.js';
import { sealTree } from '../seal.js';
import { listGuestPackages, runStepsInChroot } from '../steps.js';
import type { Backend, CustomizeContext } from './types.js';

export const chrootBackend: Backend = {
  name: 'chroot',
  async customize(ctx: CustomizeContext): Promise<string | undefined> {
    return withScope(async (scope) => {
      const disk = await attachDisk(scope, ctx.image, ctx.work);
      const dev = rootDevice(disk);
      const root = await mountRoot(scope, dev, ctx.work);
      const listText = await withScope(async (guest) => {
        await prepareChroot(guest, root, await chrootDevices(disk, dev));
        await runStepsInChroot(root, ctx.set.distro.family, ctx.layer.steps, ctx.layer.name, ctx.epoch);
        return listGuestPackages(root, ctx.set.distro.family, ctx.layer.name);
      });
      // With the chroot environment gone, the tree is what the image holds.
      await sealTree(root, { layer: ctx.layer.name, epoch: ctx.epoch, firstBoot: false });
      return listText;
    });
  },
};
