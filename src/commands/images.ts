// `ost-images images`: the installed tree of a test machine and which VMs use which build (the
// work is in consume/images.ts, imported when the command runs).
import type { Command } from 'commander';
import { defaultImagesDir, defaultVmDir } from '../consume/installed.js';
import { writeStderr } from '../core/log.js';
import { emit, existingDirOption } from './common.js';

export function registerImages(program: Command): void {
  program
    .command('images')
    .description('on a test machine: installed sets, layers and builds, where each stable name points, each chain, and which VMs use which build')
    .option('--images-dir <dir>', 'installed images [env OST_IMAGES_DIR]', defaultImagesDir())
    .option('--vm-dir <dir>', 'overlays of ost-images vm [env OST_IMAGES_VM_DIR]', defaultVmDir())
    .option('--json', 'machine-readable result on stdout')
    .action(async (o: { imagesDir: string; vmDir: string; json?: boolean }, cmd: Command) => {
      const imagesDir = existingDirOption(cmd, 'imagesDir', '--images-dir', 'OST_IMAGES_DIR');
      const vmDir = existingDirOption(cmd, 'vmDir', '--vm-dir', 'OST_IMAGES_VM_DIR');
      const { imagesReport, renderImages } = await import('../consume/images.js');
      const r = await imagesReport(imagesDir, vmDir);
      // For people on stderr, like every other command's listing; --json is the machine's form.
      emit(o, r, () => writeStderr(renderImages(r)));
    });
}
