// What each command needs from the host (commands/tools.ts) and how it is checked
// (tools/requirements.ts): the declarations cover exactly the registered commands, the rules in
// force for given options and sets are the programs the code path runs, the message names every
// missing program with its packages, and programs are found on PATH without starting anything.
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProgram, commandAskedFor } from '../../src/cli.js';
import { COMMAND_TOOLS } from '../../src/commands/tools.js';
import { ToolsMissingError } from '../../src/core/errors.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { mountingImpossible } from '../../src/tools/host.js';
import { ALL_TOOLS, type ToolName } from '../../src/tools/registry.js';
import { checkTools, missingToolsMessage, toolsNeeded, type Options } from '../../src/tools/requirements.js';
import { findTool } from '../../src/tools/run.js';
import { DEFAULT_LAYERS_DIR } from '../../src/core/paths.js';
import { removeTree, testTmp } from '../helpers/tmp.js';
import { writeLayerSet } from '../helpers/layerset.js';

const tmp = testTmp('tools-check');
afterAll(() => removeTree(tmp));

function leafCommands(c: Command, prefix = ''): string[] {
  return c.commands.flatMap((s) => {
    const name = `${prefix}${s.name()}`;
    return s.commands.length > 0 ? leafCommands(s, `${name} `) : [name];
  });
}

const sets: Record<string, LayerSet> = {
  debian12: loadLayerSet(DEFAULT_LAYERS_DIR, 'debian12'),
  el9stream: loadLayerSet(DEFAULT_LAYERS_DIR, 'el9stream'),
  'el9stream-iso': loadLayerSet(DEFAULT_LAYERS_DIR, 'el9stream-iso'),
};

async function needs(command: string, o: Options, set = 'debian12', env: NodeJS.ProcessEnv = {}): Promise<ToolName[]> {
  return (await toolsNeeded(COMMAND_TOOLS[command]!, o, env, async () => sets[set]!)).map((n) => n.tool).sort();
}

const sorted = (tools: ToolName[]): ToolName[] => [...new Set(tools)].sort();
// What mounting a guest's root and running its package manager there runs.
const CHROOT: ToolName[] = ['losetup', 'partx', 'mount', 'umount', 'mknod', 'blkid', 'chroot', 'sync', 'fstrim', 'lsattr', 'chattr'];
const MMDEBSTRAP: ToolName[] = ['mmdebstrap', 'sfdisk', 'mke2fs', 'dumpe2fs', 'debugfs', 'e2fsck'];
// The default set with --backend chroot: its base (mmdebstrap), the layers above it (chroot), its flat image.
const BUILD_DEBIAN_CHROOT = sorted(['qemu-img', 'ssh-keygen', ...CHROOT, ...MMDEBSTRAP, 'qemu-storage-daemon']);

describe('the declarations', () => {
  it('name exactly the commands the CLI registers', async () => {
    const registered = leafCommands(await buildProgram()).sort();
    expect(Object.keys(COMMAND_TOOLS).sort()).toEqual(registered);
  });

  it('name only programs the registry knows (why, and the apt and dnf package)', () => {
    for (const [command, rules] of Object.entries(COMMAND_TOOLS)) for (const r of rules) for (const t of r.tools) expect(ALL_TOOLS[t], `${command}: ${t}`).toBeDefined();
  });

  it('say when every rule that is not always in force applies', () => {
    for (const [command, rules] of Object.entries(COMMAND_TOOLS)) for (const r of rules) if (r.if || r.ifSet || r.optional) expect(r.when, `${command}: ${r.tools.join(' ')}`).toBeTruthy();
  });
});

describe('the programs a run needs', () => {
  // [command, options, set, environment, programs]: what the code path of that run starts.
  const cases: [string, Options, string, NodeJS.ProcessEnv, ToolName[]][] = [
    ['validate', {}, 'debian12', {}, []],
    ['plan', {}, 'debian12', {}, []],
    ['build', { backend: 'chroot', dryRun: true }, 'debian12', {}, []],
    ['build', { backend: 'chroot' }, 'debian12', {}, BUILD_DEBIAN_CHROOT],
    ['build', { backend: 'chroot', cacheRepo: ['/srv/repo'] }, 'debian12', {}, sorted([...BUILD_DEBIAN_CHROOT, 'rpm'])],
    ['build', { backend: 'chroot', package: true }, 'debian12', {}, sorted([...BUILD_DEBIAN_CHROOT, 'rpmbuild'])],
    // A cloud image base: both growers (ext4 or XFS shows only after the download), FUSE export.
    ['build', { backend: 'chroot' }, 'el9stream', {}, sorted(['qemu-img', 'ssh-keygen', ...CHROOT, 'qemu-storage-daemon', 'sfdisk', 'e2fsck', 'resize2fs', 'xfs_growfs'])],
    // A set that is only a kickstart base: no backend at all.
    ['build', { backend: 'guestfs' }, 'el9stream-iso', {}, sorted(['qemu-img', 'ssh-keygen', ...CHROOT, 'qemu-storage-daemon', 'xorriso', 'qemu-system-x86_64'])],
    ['package', {}, 'debian12', {}, ['rpmbuild']],
    ['publish', {}, 'debian12', {}, ['createrepo_c', 'rpm']],
    ['publish', { signKey: 'ci@example.org' }, 'debian12', {}, ['createrepo_c', 'gpg', 'rpm', 'rpmsign']],
    ['publish', { dryRun: true }, 'debian12', {}, ['rpm']],
    ['publish', { rollback: true, signKey: '' }, 'debian12', {}, ['rpm']],
    ['prune', { dryRun: true }, 'debian12', {}, []],
    ['promote', {}, 'debian12', { OST_IMAGES_SIGN_KEY: 'k', OST_IMAGES_MIRROR: '/srv/m' }, ['createrepo_c', 'gpg', 'rpm', 'rpmsign', 'rsync']],
    ['promote', { mirror: [] }, 'debian12', { OST_IMAGES_MIRROR: '/srv/m' }, ['createrepo_c', 'rpm']],
    ['mirror', { to: ['/srv/m', 'rsync://m2/x/'] }, 'debian12', {}, ['rsync']],
    ['mirror', { to: ['deploy@web3:/srv/www'] }, 'debian12', {}, ['rsync', 'ssh']],
    ['mirror', { to: ['deploy@web3:/srv/www'], rsh: 'ssh -p 2222' }, 'debian12', {}, ['rsync']],
    ['mirror', { to: ['deploy@web3:/srv/www'] }, 'debian12', { RSYNC_RSH: 'ssh -p 2222' }, ['rsync']],
    ['install', {}, 'debian12', {}, ['dnf', 'rpm']],
    ['verify', {}, 'debian12', {}, ['qemu-img']],
    ['test-boot', { ssh: false }, 'debian12', {}, ['qemu-img', 'qemu-system-x86_64']],
    ['test-boot', { ssh: true }, 'debian12', {}, ['qemu-img', 'qemu-system-x86_64', 'ssh']],
    ['remove-old', {}, 'debian12', {}, ['dnf', 'qemu-img', 'rpm']],
    ['images', {}, 'debian12', {}, ['qemu-img']],
    ['vm create', {}, 'debian12', {}, ['qemu-img', 'ssh', 'virsh']],
    ['vm start', { wait: false }, 'debian12', {}, ['virsh']],
    ['vm ls', {}, 'debian12', {}, ['virsh']],
    ['ci layer', { layer: 'upgrade', backend: 'chroot' }, 'debian12', {}, sorted(['rpm', 'qemu-img', 'qemu-storage-daemon', ...CHROOT, 'rpmbuild', 'createrepo_c'])],
    ['ci layer', { layer: 'base', backend: 'chroot', upload: 'scp' }, 'debian12', {}, sorted(['rpm', 'qemu-img', 'ssh-keygen', ...CHROOT, ...MMDEBSTRAP, 'rpmbuild', 'sh'])],
    ['ci boot', {}, 'debian12', {}, ['dnf', 'qemu-img', 'qemu-system-x86_64', 'rpm', 'ssh']],
    ['ci gitlab', {}, 'debian12', {}, []],
    ['doctor', {}, 'debian12', {}, []],
  ];
  it.each(cases)('%s %j on %s (env %j)', async (command, o, set, env, expected) => {
    expect(await needs(command, o, set, env)).toEqual(sorted(expected));
  });

  it('verify --rebuild: building the layers again, reading both trees, packaging to compare', async () => {
    const upgrade = await needs('verify', { rebuild: ['upgrade'], backend: 'chroot' });
    expect(upgrade).toEqual(sorted(['qemu-img', 'qemu-storage-daemon', ...CHROOT, 'rpmbuild', 'rpm']));
    // The base again: how it is made.
    expect(await needs('verify', { rebuild: ['base'], backend: 'chroot' })).toEqual(sorted([...upgrade, 'ssh-keygen', ...MMDEBSTRAP]));
  });

  it('the set is read only when a rule in force depends on it', async () => {
    let reads = 0;
    const load = async () => {
      reads++;
      return sets.debian12!;
    };
    await toolsNeeded(COMMAND_TOOLS.verify!, {}, {}, load);
    await toolsNeeded(COMMAND_TOOLS['test-boot']!, {}, {}, load);
    expect(reads).toBe(0);
    await toolsNeeded(COMMAND_TOOLS.build!, { backend: 'auto' }, {}, load);
    expect(reads).toBeGreaterThan(0);
  });

  it('--backend auto: the chroot backend where the host can mount images, else guestfs; libguestfs optional', async () => {
    const tools = await needs('build', { backend: 'auto' });
    if (mountingImpossible() === undefined) {
      expect(tools).toEqual(BUILD_DEBIAN_CHROOT);
    } else {
      expect(tools).toEqual(sorted(['qemu-img', 'ssh-keygen', ...CHROOT, ...MMDEBSTRAP, 'virt-customize', 'virt-cat', 'virt-sparsify']));
    }
  });

  it('the set names its root key: plan and build --dry-run read it with ssh-keygen', async () => {
    const { layersDir } = writeLayerSet({
      'set.yaml': 'distro: {family: debian, name: Debian, version: "12", codename: bookworm, mirror: "http://deb.debian.org/debian"}\npackage: {prefix: ost-images}\nssh_key: {env: ROOT_KEY}\n',
      'base/layer.yaml': 'base:\n  mmdebstrap:\n    packages: [openssh-server]\n',
    });
    const keyed = loadLayerSet(layersDir, 'demo');
    for (const [command, o] of [['plan', {}], ['build', { dryRun: true }]] as const) {
      expect((await toolsNeeded(COMMAND_TOOLS[command]!, o, {}, async () => keyed)).map((n) => n.tool)).toEqual(['ssh-keygen']);
    }
  });
});

describe('the check', () => {
  it('names every missing program at once, why, and its package on apt and dnf hosts', () => {
    const rules = COMMAND_TOOLS.publish!;
    const message = missingToolsMessage('publish', [
      { tool: 'createrepo_c', rule: rules[0]! },
      { tool: 'rpmsign', rule: rules[2]! },
      { tool: 'gpg', rule: rules[2]! },
    ]);
    expect(message).toBe(
      [
        '`ost-images publish` needs 3 programs that are not installed (nothing was done):',
        '  createrepo_c: generating DNF repository metadata (needed unless --dry-run or --rollback); package createrepo-c (apt), createrepo_c (dnf)',
        '  rpmsign: signing published packages (needed with --sign-key (or OST_IMAGES_SIGN_KEY)); package rpm (apt), rpm-sign (dnf)',
        '  gpg: signing repository metadata and exporting the public key (needed with --sign-key (or OST_IMAGES_SIGN_KEY)); package gnupg (apt), gnupg2 (dnf)',
        "Install with 'apt-get install createrepo-c rpm gnupg' (Debian/Ubuntu) or 'dnf install createrepo_c rpm-sign gnupg2' (Fedora/EL), or run scripts/install-deps; `ost-images doctor` lists what every command needs.",
      ].join('\n'),
    );
  });

  it('throws ToolsMissingError (exit 2) when a program is missing, nothing otherwise', async () => {
    const absent = { tools: ['virsh'] as ToolName[] };
    const saved = process.env.PATH;
    process.env.PATH = path.join(tmp, 'empty-path');
    try {
      const err = await checkTools('vm ls', [absent], {}, {}, async () => sets.debian12!).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ToolsMissingError);
      expect((err as ToolsMissingError).exitCode).toBe(2);
      expect((err as Error).message).toContain('`ost-images vm ls` needs a program that is not installed (nothing was done):\n  virsh: ');
    } finally {
      process.env.PATH = saved;
    }
    await expect(checkTools('validate', [], {}, {}, async () => sets.debian12!)).resolves.toBeUndefined();
  });

  it('finds a program as `command -v` does: the first executable regular file on PATH', () => {
    const [a, b] = [path.join(tmp, 'a'), path.join(tmp, 'b')];
    mkdirSync(a);
    mkdirSync(b);
    writeFileSync(path.join(a, 'tool'), 'not executable');
    mkdirSync(path.join(a, 'dir-tool'));
    writeFileSync(path.join(b, 'tool'), '#!/bin/sh\n');
    chmodSync(path.join(b, 'tool'), 0o755);
    symlinkSync(path.join(b, 'tool'), path.join(b, 'linked'));
    expect(findTool('tool', `${a}:${b}`)).toBe(path.join(b, 'tool'));
    expect(findTool('linked', `${a}:${b}`)).toBe(path.join(b, 'linked'));
    expect(findTool('dir-tool', `${a}:${b}`)).toBeUndefined();
    expect(findTool('nothing', `${a}:${b}`)).toBeUndefined();
  });
});

describe('start-up', () => {
  it.each([
    [['node', 'ost-images', '--help'], undefined],
    [['node', 'ost-images'], undefined],
    [['node', 'ost-images', '-q', 'build', '--layer', 'x'], 'build'],
    [['node', 'ost-images', '--debug', 'vm', 'create', 'x'], 'vm'],
    [['node', 'ost-images', 'help', 'ci'], 'ci'],
    [['node', 'ost-images', 'help'], undefined],
    [['node', 'ost-images', 'biuld'], 'biuld'],
  ] as const)('%j asks for %s', (argv, expected) => {
    expect(commandAskedFor([...argv])).toBe(expected);
  });

  it('registers only the group asked for, every group for the listing', async () => {
    const names = (p: Command) => p.commands.map((c) => c.name());
    expect(names(await buildProgram(['node', 'ost-images', 'build']))).toEqual(['build', 'package', 'all']);
    expect(names(await buildProgram(['node', 'ost-images', 'help', 'vm']))).toEqual(['vm']);
    const listing = await buildProgram(['node', 'ost-images', '--help']);
    expect(names(listing).sort()).toEqual(names(await buildProgram()).sort());
    // The ci group's listing leaves out the generators (their options name the YAML renderers' settings).
    expect(names(listing.commands.find((c) => c.name() === 'ci')!)).toEqual(['layer', 'boot']);
  });
});
