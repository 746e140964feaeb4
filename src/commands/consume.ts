// Commands for what a test machine does with the packages: install, verify, test-boot, and
// remove-old after a dnf upgrade. What does the work is imported when a command runs (see cli.ts,
// "Start-up").
import path from 'node:path';
import { Option, type Command } from 'commander';
import { defaultVmDir } from '../consume/installed.js';
import { StepError, UsageError } from '../core/errors.js';
import { log } from '../core/log.js';
import { DEFAULT_REPO_DIR } from '../core/paths.js';
import { PUBLIC_KEY_FILE } from '../repository/snapshot.js';
import { Store } from '../store/store.js';
import { SECONDS, parseNumber } from '../input/numbers.js';
import { existingDir } from '../input/paths.js';
import { emit, existingDirOption, layerSet, parseKeep, withCommon, type Common } from './common.js';

export function registerConsume(program: Command): void {
  program
    .command('install')
    .description('install layer packages from a repository into a scratch root with dnf (what a test machine does)')
    .argument('<packages...>', 'package names, e.g. ost-images-engine-installed')
    .option('-r, --repo <dir-or-url>', 'repository directory or URL', DEFAULT_REPO_DIR)
    .requiredOption('--root <dir>', 'install root')
    .option('--gpgcheck', `check package and repomd.xml signatures against the key published beside the repository (${PUBLIC_KEY_FILE})`)
    .option('--json', 'machine-readable result on stdout')
    .action(async (packages: string[], o: { repo: string; root: string; gpgcheck?: boolean; json?: boolean }) => {
      const { installInto } = await import('../consume/install.js');
      const r = await installInto(o.root, o.repo, packages, o.gpgcheck);
      emit(o, r, () => log.info(`installed into ${o.root}: ${r.installed.join(' ')}`));
    });

  withCommon(program.command('verify'))
    .description(
      "check that an image's backing chain resolves and every image in it passes qemu-img check; or, with --rebuild, " +
        'that layer builds are what their inputs say: each is built again from its recorded inputs in a scratch store, on the parent builds it was made on, and compared file by file (and byte by byte where that is guaranteed)',
    )
    .argument('[image]', 'top image of the chain')
    .option('--rebuild <layer...>', "rebuild these layers' current builds (or, with --cache-repo and none in the store, the newest published) and compare")
    .option('--cache-repo <repo...>', 'with --rebuild: repositories (directories or URLs) to take the build checked or its parents from')
    .addOption(new Option('-b, --backend <name>', 'with --rebuild: how layer steps run').choices(['auto', 'chroot', 'guestfs']).default('auto'))
    .option('--offline', "with --rebuild: do not check that the mirror still serves the upstream metadata the build recorded")
    .option('--keep-scratch', 'with --rebuild: keep the scratch store with the rebuild (its path is printed)')
    .option('--blocks', "with --rebuild: where the image bytes differ, also count the overlays' differing 4 KiB blocks (reads both chains whole)")
    .addHelpText(
      'after',
      `
With --rebuild, per layer: IDENTICAL (exit 0 when all are), DIFFERENT with every path that differs and how
(content, mode, owner, mtime, link target, missing or extra; exit 1), or NOT CHECKED with why (exit 2): the
set's definitions no longer give the build's key, or the mirror moved since it was built.`,
    )
    .action(async (image: string | undefined, o: Common & { rebuild?: string[]; cacheRepo?: string[]; backend: 'auto' | 'chroot' | 'guestfs'; offline?: boolean; keepScratch?: boolean; blocks?: boolean }) => {
      if (o.rebuild) {
        if (image !== undefined) throw new UsageError('give either an image or --rebuild LAYER..., not both');
        const [{ requireLayer }, { describeVerdict, verdictExitCode, verifyRebuild }] = await Promise.all([import('../plan/plan.js'), import('../jobs/reproduce.js')]);
        const ls = await layerSet(o);
        o.rebuild.forEach((l) => requireLayer(ls, l));
        const store = new Store(o.store);
        const unlock = await store.lock(ls.set.name);
        try {
          const verdicts = await verifyRebuild(ls, store, { layers: o.rebuild, cacheRepos: o.cacheRepo, backend: o.backend, offline: o.offline, keepScratch: o.keepScratch, blocks: o.blocks });
          emit(o, verdicts, () => verdicts.forEach((v) => describeVerdict(v).forEach((l) => log.info(l))));
          process.exitCode = verdictExitCode(verdicts);
        } finally {
          unlock();
        }
        return;
      }
      if (image === undefined) throw new UsageError('give an image to check its chain, or --rebuild LAYER... to check builds against their inputs');
      const { verifyChain } = await import('../consume/verify.js');
      const chain = await verifyChain(image);
      emit(o, chain, () => chain.forEach((c) => log.info(`ok ${c.file}${c.backing ? ` -> ${path.basename(c.backing)}` : ''}`)));
    });

  withCommon(program.command('test-boot'))
    .description("boot a layer (its current build, or any image) and wait for userspace on the serial console, then log in over SSH with the root key shipped with the chain's base")
    .option('-l, --layer <name>', 'layer whose current build to boot (default: every top layer)')
    .option('-i, --image <file>', 'boot this image instead (e.g. an installed one)')
    .option('-t, --timeout <seconds>', 'give up after this long', '600')
    .option('--console-log <file>', 'where to write the console (kept on failure; default: a file in the store)')
    .option('--no-ssh', "do not log in over SSH with the root key shipped with the chain's base")
    .action(async (o: Common & { layer?: string; image?: string; timeout: string; consoleLog?: string; ssh: boolean }) => {
      const timeoutSec = parseNumber('--timeout', o.timeout, SECONDS);
      const [{ imageOf }, { bootImage }, { requireLayer, topLayers }] = await Promise.all([import('../builder/build.js'), import('../consume/test-boot.js'), import('../plan/plan.js')]);
      const images: string[] = [];
      if (o.image) {
        images.push(o.image);
      } else {
        const ls = await layerSet(o);
        const store = new Store(o.store);
        for (const l of o.layer ? [o.layer] : topLayers(ls)) {
          requireLayer(ls, l);
          const rec = store.current(ls.set.name, l);
          if (!rec) throw new StepError(`layer '${l}' has no build yet`);
          images.push(imageOf(store, rec));
        }
      }
      const results = [];
      for (const image of images) results.push(await bootImage(image, timeoutSec, o.consoleLog, o.store, o.ssh));
      emit(o, results, () => undefined);
    });

  program
    .command('remove-old')
    .description("on a test machine: remove old layer builds that dnf upgrade left installed beside the new ones, keeping the newest N of every top layer, every build a VM made by `ost-images vm` is backed by (running or stopped), every build a running process has open, and everything those need")
    .option('--keep <n>', 'builds to keep of every installed top layer', '1')
    .option('--root <dir>', 'installation root (dnf --installroot)', '/')
    .option('--vm-dir <dir>', 'overlays of ost-images vm, besides those libvirt knows [env OST_IMAGES_VM_DIR]', defaultVmDir())
    .option('-n, --dry-run', 'list what would be removed; remove nothing')
    .option('--json', 'machine-readable result on stdout')
    .action(async (o: { keep: string; root: string; vmDir: string; dryRun?: boolean; json?: boolean }, cmd: Command) => {
      const keep = parseKeep(o.keep)!;
      // '/' by default; a --root that does not exist would read as "nothing installed" (exit 0).
      const root = existingDir('--root', o.root);
      const vmDir = existingDirOption(cmd, 'vmDir', '--vm-dir', 'OST_IMAGES_VM_DIR');
      const { removeOld } = await import('../consume/remove-old.js');
      const r = await removeOld(root, keep, { dryRun: o.dryRun, vmDir });
      emit(o, r, () => undefined);
    });
}
