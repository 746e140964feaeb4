// `ost-images vm ...`: VMs on the installed images (or a builder's store) through libvirt, for test
// machines and for engineers who just rebuilt a layer (the work is in src/consume/vm.ts, imported
// when a command runs).
import type { Command } from 'commander';
import { defaultImagesDir, defaultVmDir } from '../consume/installed.js';
import type { ImageSource } from '../consume/vm.js';
import { UsageError } from '../core/errors.js';
import { log } from '../core/log.js';
import { DEFAULT_SET } from '../core/paths.js';
import { defaultStoreDir } from '../store/store.js';
import { CPUS, SECONDS, parseMiB, parseNumber } from '../input/numbers.js';
import { existingDir } from '../input/paths.js';
import { emit, existingDirOption } from './common.js';


interface CreateCli {
  layer: string;
  set: string;
  memory: string;
  cpus: string;
  imagesDir?: string;
  store?: string;
  fromStore?: boolean;
  vmDir: string;
  keep?: boolean;
  timeout: string;
  json?: boolean;
}

function imageSource(o: CreateCli): ImageSource {
  if ((o.store !== undefined || o.fromStore) && o.imagesDir !== undefined) throw new UsageError('--images-dir does not go with --store/--from-store: a VM is made on one or the other');
  if (o.store !== undefined) return { kind: 'store', storeDir: existingDir('--store', o.store) };
  if (o.fromStore) return { kind: 'store', storeDir: defaultStoreDir() };
  if (o.imagesDir !== undefined) return { kind: 'installed', imagesDir: existingDir('--images-dir', o.imagesDir) };
  return { kind: 'installed', imagesDir: process.env.OST_IMAGES_DIR ? existingDir('OST_IMAGES_DIR', defaultImagesDir()) : defaultImagesDir() };
}

/**
 * The VM directory of every subcommand but create (which makes it): it must exist when given
 * (--vm-dir or OST_IMAGES_VM_DIR); the built-in default may be missing (no VM made yet).
 */
const vmDirOf = (cmd: Command): string => existingDirOption(cmd, 'vmDir', '--vm-dir', 'OST_IMAGES_VM_DIR');

export function registerVm(program: Command): void {
  const vm = program
    .command('vm')
    .description('VMs on the installed images through libvirt (qemu:///system): create, ls, ssh, console, stop, start, rm')
    .addHelpText(
      'after',
      `
Examples:
  ost-images vm create engine --layer engine-installed --memory 4G
  ost-images vm create host0 --layer host-installed --json
  ost-images vm create mine --layer engine-installed --from-store   the layer's current build in your store
  ost-images vm ssh engine -- systemctl is-system-running
  ost-images vm rm engine

Overlays and console logs go to the VM directory (--vm-dir, env OST_IMAGES_VM_DIR, default
/var/lib/ost-images/vms); images are taken from --images-dir (env OST_IMAGES_DIR, default
/usr/share/ost-images).`,
    );
  const withVmDir = (c: Command): Command =>
    c.option('--vm-dir <dir>', 'where overlays and console logs go; every subcommand acts only on VMs whose overlay is there [env OST_IMAGES_VM_DIR]', defaultVmDir());

  withVmDir(vm.command('create'))
    .description("an overlay on a layer's exact installed build, defined and started by libvirt; waits until SSH with the set's key works")
    .argument('<name>', 'VM (and libvirt domain) name: a-z 0-9 _ . - , at most 63')
    .requiredOption('-l, --layer <name>', 'layer to run, e.g. engine-installed')
    .option('-s, --set <name>', 'layer set', DEFAULT_SET)
    .option('-m, --memory <size>', 'memory (MiB, or with M/G)', '1024')
    .option('-c, --cpus <n>', 'virtual CPUs', '2')
    .option('--images-dir <dir>', 'installed images [env OST_IMAGES_DIR; default /usr/share/ost-images]')
    .option('--store <dir>', "use the layer's current build in this builder's store instead of the installed images")
    .option('--from-store', `use the layer's current build in the default store (${defaultStoreDir()})`)
    .option('--keep', 'if the VM does not come up, leave its domain and overlay for inspection')
    .option('-t, --timeout <seconds>', 'how long to wait for SSH', '600')
    .option('--json', 'machine-readable result on stdout: address, port, key, overlay, backing chain, build')
    .action(async (name: string, o: CreateCli) => {
      const memoryMiB = parseMiB('--memory', o.memory);
      const cpus = parseNumber('--cpus', o.cpus, CPUS);
      const timeoutSec = parseNumber('--timeout', o.timeout, SECONDS);
      // Made when missing; a path that cannot be a directory is bad input.
      const vmDir = existingDir('--vm-dir', o.vmDir, { mayBeMissing: true });
      const { createVm } = await import('../consume/vm.js');
      const r = await createVm({ name, set: o.set, layer: o.layer, from: imageSource(o), vmDir, memoryMiB, cpus, timeoutSec, keep: o.keep });
      emit(o, r, () => undefined);
    });

  withVmDir(vm.command('ls'))
    .description('every VM made by vm create: state, the set/layer/build it runs on, and whether a newer build is installed')
    .option('--json', 'machine-readable result on stdout')
    .action(async (o: { vmDir: string; json?: boolean }, cmd: Command) => {
      const rows = await (await import('../consume/vm.js')).lsVms(vmDirOf(cmd));
      emit(o, rows, () => {
        if (rows.length === 0) log.info('no VMs');
        for (const r of rows) {
          const on = r.set ? `${r.set}/${r.layer} ${r.build}` : r.overlay;
          const newer = r.newerBuild ? `  (newer build installed: ${r.newerBuild})` : '';
          log.info(`${r.name.padEnd(20)} ${r.state.padEnd(10)} ${on}${r.port ? `  ssh port ${r.port}` : ''}${newer}`);
        }
      });
    });

  withVmDir(vm.command('ssh'))
    .description("log in to a running VM as root with the set's key, or run a command there (exits with its exit code)")
    .argument('<name>', 'VM name')
    .argument('[command...]', "command to run (after --), e.g. -- uname -a; as with ssh, its words are joined and run by root's shell in the VM")
    .action(async (name: string, command: string[], _o: unknown, cmd: Command) => {
      process.exitCode = await (await import('../consume/vm.js')).sshVm(name, command, vmDirOf(cmd));
    });

  withVmDir(vm.command('console'))
    .description("print a VM's serial console log")
    .argument('<name>', 'VM name')
    .option('-f, --follow', 'keep printing what arrives until the VM stops (Ctrl-C to leave)')
    .action(async (name: string, o: { follow?: boolean }, cmd: Command) => {
      await (await import('../consume/vm.js')).consoleVm(name, { follow: o.follow, vmDir: vmDirOf(cmd) });
    });

  withVmDir(vm.command('stop'))
    .description('stop a VM at once (virsh destroy); its definition and overlay stay')
    .argument('<name>', 'VM name')
    .option('--json', 'machine-readable result on stdout')
    .action(async (name: string, o: { json?: boolean }, cmd: Command) => {
      emit(o, await (await import('../consume/vm.js')).stopVm(name, vmDirOf(cmd)), () => undefined);
    });

  withVmDir(vm.command('start'))
    .description('start a stopped VM again and wait for SSH')
    .argument('<name>', 'VM name')
    .option('-t, --timeout <seconds>', 'how long to wait for SSH', '600')
    .option('--no-wait', 'do not wait for SSH')
    .option('--json', 'machine-readable result on stdout')
    .action(async (name: string, o: { timeout: string; wait: boolean; json?: boolean }, cmd: Command) => {
      const timeoutSec = parseNumber('--timeout', o.timeout, SECONDS);
      emit(o, await (await import('../consume/vm.js')).startVm(name, { timeoutSec, wait: o.wait, vmDir: vmDirOf(cmd) }), () => undefined);
    });

  withVmDir(vm.command('rm'))
    .description('remove a VM: stop it if running, undefine it, delete its overlay and console log')
    .argument('<name>', 'VM name')
    .option('--json', 'machine-readable result on stdout')
    .action(async (name: string, o: { json?: boolean }, cmd: Command) => {
      emit(o, await (await import('../consume/vm.js')).rmVm(name, vmDirOf(cmd)), () => undefined);
    });
}
