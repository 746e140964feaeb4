// `ost-images vm` and `ost-images images` against real libvirt (qemu:///system, TCG), real QEMU
// and real SSH, on a tiny guest that boots in seconds and runs dropbear with the set's key, from an
// installed tree made as the packages leave it (test/helpers/tiny-vm.ts). Every wait is for a state
// (a domain running, a command's exit), never for time. The real Debian image is the e2e test's.
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installInto } from '../../src/consume/install.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import { packageLayers } from '../../src/package/package.js';
import { computeKeys } from '../../src/plan/keys.js';
import { publish } from '../../src/publish/publish.js';
import type { BuildRecord } from '../../src/records/build.js';
import { Store } from '../../src/store/store.js';
import * as qemuImg from '../../src/tools/qemu-img.js';
import { installedNvrs } from '../../src/tools/rpmbuild.js';
import { cli, startCli, stopStartedClis } from '../helpers/cli.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { domainState, domains, ensureLibvirt, removeDomains } from '../helpers/libvirt.js';
import { demoSet } from '../helpers/sets.js';
import { installBuild, installKey, makeBootableTinyDisk, makeKeyPair, pointStable, storeBuild, type TreeBuild } from '../helpers/tiny-vm.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('vm');
const work = path.join(tmp, 'work');
const imagesDir = path.join(tmp, 'images');
const vmDir = path.join(tmp, 'vms');
const env = { OST_IMAGES_KVM: '0', OST_IMAGES_DIR: imagesDir, OST_IMAGES_VM_DIR: vmDir };
// Domain names of this run: nothing else on the machine is touched, and a failed run's leftovers are found.
const tag = `ostt${process.pid}`;
const vmName = (n: string): string => `${tag}-${n}`;
let stopLibvirt: () => Promise<void> = async () => undefined;
let key: string;
const b: Record<string, TreeBuild> = {};
// A builder's store, for VMs on a layer's current build (`vm create --store`).
const builderStore = new Store(path.join(tmp, 'builder-store'));
const sb: Record<string, BuildRecord> = {};

interface Created {
  name: string;
  address: string;
  port: number;
  key: string;
  overlay: string;
  consoleLog: string;
  backingChain: string[];
  set: string;
  layer: string;
  build: string;
  buildFile: string;
  sshSeconds: number;
  hostname: string;
}

const ours = async (): Promise<string[]> => (await domains()).filter((d) => d.startsWith(`${tag}-`));
const vmFiles = (): string[] => (existsSync(vmDir) ? readdirSync(vmDir).filter((f) => !f.startsWith('.')).sort() : []);

beforeAll(async () => {
  stopLibvirt = await ensureLibvirt(path.join(tmp, 'libvirt'));
  // The VM directory the environment names must exist (a wrong one is bad input, issue 18).
  mkdirSync(vmDir, { recursive: true });
  mkdirSync(path.join(tmp, 'empty-images'));
  const pub = makeKeyPair(path.join(work, 'key'));
  await makeBootableTinyDisk(path.join(work, 'tiny.qcow2'), path.join(work, 'w1'), { authorizedKey: pub, hostname: 'tiny' });
  await makeBootableTinyDisk(path.join(work, 'off.qcow2'), path.join(work, 'w2'), { authorizedKey: pub, hostname: 'off', poweroff: true });
  await qemuImg.create(path.join(work, 'blank.qcow2'), { size: 64 * 1024 ** 2 });
  b.base = await installBuild(imagesDir, 'demo', 'base', '20260101000000', { from: path.join(work, 'tiny.qcow2') });
  b.upgrade = await installBuild(imagesDir, 'demo', 'upgrade', '20260101000100', { parent: b.base, pattern: 0x22 });
  b.engine1 = await installBuild(imagesDir, 'demo', 'engine-installed', '20260101000200', { parent: b.upgrade, pattern: 0x33 });
  b.host = await installBuild(imagesDir, 'demo', 'host-installed', '20260101000300', { parent: b.upgrade, pattern: 0x44 });
  // Layers that do not come up: one boots and powers off, one has nothing to boot.
  b.off = await installBuild(imagesDir, 'demo', 'poweroff', '20260101000000', { from: path.join(work, 'off.qcow2') });
  b.blank = await installBuild(imagesDir, 'demo', 'blank', '20260101000000', { from: path.join(work, 'blank.qcow2') });
  for (const x of Object.values(b)) pointStable(imagesDir, x);
  key = installKey(imagesDir, 'demo', path.join(work, 'key'));
  sb.base = await storeBuild(builderStore, 'demo', 'base', '20260101000000', { from: path.join(work, 'tiny.qcow2'), keyFile: path.join(work, 'key') });
  sb.upgrade = await storeBuild(builderStore, 'demo', 'upgrade', '20260101000100', { parent: sb.base, pattern: 0x22 });
  sb.host = await storeBuild(builderStore, 'demo', 'host-installed', '20260101000300', { parent: sb.upgrade, pattern: 0x44 });
}, 300_000);

afterAll(async () => {
  // Only after a failure is anything left; `vm rm` is what the tests use otherwise.
  await stopStartedClis();
  await removeDomains(await ours());
  await stopLibvirt();
  removeTree(tmp);
}, 300_000);

describe('ost-images vm: bad input exits 2 and creates nothing', () => {
  it.each([
    ['an invalid name', ['vm', 'create', 'Bad/Name', '--layer', 'engine-installed'], "'Bad/Name' is not a valid VM name"],
    ['an unknown set', ['vm', 'create', vmName('x'), '--set', 'nosuch', '--layer', 'engine-installed'], "set 'nosuch' is not installed in"],
    ['an unknown layer', ['vm', 'create', vmName('x'), '--set', 'demo', '--layer', 'nosuch'], "layer 'nosuch' of set 'demo' is not installed in"],
    ['a bad memory size', ['vm', 'create', vmName('x'), '--set', 'demo', '--layer', 'engine-installed', '--memory', 'lots'], "--memory: 'lots' is not a size"],
    ['a missing tree (a typo)', ['vm', 'create', vmName('x'), '--set', 'demo', '--layer', 'base', '--images-dir', path.join(tmp, 'nothing')], `--images-dir: '${path.join(tmp, 'nothing')}': does not exist`],
    ['an empty tree', ['vm', 'create', vmName('x'), '--set', 'demo', '--layer', 'base', '--images-dir', path.join(tmp, 'empty-images')], "set 'demo' is not installed in"],
    ['two image sources', ['vm', 'create', vmName('x'), '--set', 'demo', '--layer', 'base', '--images-dir', imagesDir, '--from-store'], '--images-dir does not go with --store'],
    ['no such VM', ['vm', 'ssh', vmName('nosuch'), '--', 'true'], 'there is no VM'],
    ['a layer the store has no build of', ['vm', 'create', vmName('x'), '--set', 'demo', '--layer', 'engine-installed', '--store', builderStore.root], "no current build of layer 'engine-installed' of set 'demo' in the store"],
  ])('%s', async (_what, args, message) => {
    const r = await cli(args, env);
    expect(r.stderr).toContain(message);
    expect(r.code).toBe(2);
    expect(await ours()).toEqual([]);
    expect(vmFiles()).toEqual([]);
  });
});

describe('ost-images vm on one chain', () => {
  const [a, h1, h2] = [vmName('engine'), vmName('host1'), vmName('host2')];
  const made: Record<string, Created> = {};

  it('three VMs at once (one on a builder\'s store): each its own overlay on the resolved build file, its own port, reachable over SSH', async () => {
    const results = await Promise.all([
      cli(['vm', 'create', a, '--set', 'demo', '--layer', 'engine-installed', '--memory', '256', '--cpus', '1', '--json'], env),
      cli(['vm', 'create', h1, '--set', 'demo', '--layer', 'host-installed', '--memory', '256', '--cpus', '1', '--json'], env),
      cli(['vm', 'create', h2, '--set', 'demo', '--layer', 'host-installed', '--store', builderStore.root, '--memory', '256', '--cpus', '1', '--json'], env),
    ]);
    for (const r of results) {
      expect(r.stderr).not.toContain('error');
      expect(r.code).toBe(0);
      const c = JSON.parse(r.stdout) as Created;
      made[c.name] = c;
    }
    process.stderr.write(`vm create, three at once under TCG: SSH after ${Object.values(made).map((c) => `${c.name} ${c.sshSeconds.toFixed(1)}s`).join(', ')}\n`);
    expect(new Set(Object.values(made).map((c) => c.port)).size).toBe(3);
    expect(new Set(Object.values(made).map((c) => c.overlay)).size).toBe(3);
    const e = made[a]!;
    expect(e).toMatchObject({ address: '127.0.0.1', key, set: 'demo', layer: 'engine-installed', build: '12-20260101000200', buildFile: b.engine1!.file, hostname: 'tiny' });
    expect(e.overlay).toBe(path.join(vmDir, `${a}.qcow2`));
    expect(e.backingChain).toEqual([e.overlay, b.engine1!.file, b.upgrade!.file, b.base!.file]);
    // The overlay names the exact build, never the stable name (which an upgrade moves).
    expect((await qemuImg.chain(e.overlay, { shared: true }))[0]!['backing-filename']).toBe(b.engine1!.file);
    expect(made[h1]!.backingChain.slice(1)).toEqual([b.host!.file, b.upgrade!.file, b.base!.file]);
    // From the store: its current build, logged in to with the key beside the chain's base.
    const img = (r: BuildRecord) => builderStore.imagePath('demo', r.image);
    expect(made[h2]).toMatchObject({ source: 'store', origin: builderStore.root, build: '12-20260101000300', buildFile: img(sb.host!), key: builderStore.imagePath('demo', sb.base!.sshKey!.private) });
    expect(made[h2]!.backingChain.slice(1)).toEqual([img(sb.host!), img(sb.upgrade!), img(sb.base!)]);
  });

  it('vm ssh runs a command in each and exits with its exit code', async () => {
    for (const n of [a, h1, h2]) {
      const r = await cli(['vm', 'ssh', n, '--', 'cat', '/etc/hostname'], env);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe('tiny');
    }
    // As with ssh itself, the words are joined and run by root's shell in the VM.
    const r = await cli(['vm', 'ssh', a, '--', 'echo', 'to stderr', '>&2;', 'exit 7'], env);
    expect(r.stderr).toContain('to stderr');
    expect(r.code).toBe(7);
  });

  it('vm ls: state, the build each runs on, and a newer build once one is installed', async () => {
    const ls = async () => JSON.parse((await cli(['vm', 'ls', '--json'], env)).stdout) as { name: string; state: string; layer: string; build: string; newerBuild?: string; port: number }[];
    let rows = (await ls()).filter((r) => r.name.startsWith(tag));
    expect(rows.map((r) => [r.name, r.state, r.layer, r.build, r.newerBuild])).toEqual([
      [a, 'running', 'engine-installed', '12-20260101000200', undefined],
      [h1, 'running', 'host-installed', '12-20260101000300', undefined],
      [h2, 'running', 'host-installed', '12-20260101000300', undefined],
    ]);
    // dnf installs a newer engine build beside the old one and its scriptlet moves the stable name.
    b.engine2 = await installBuild(imagesDir, 'demo', 'engine-installed', '20260102000200', { parent: b.upgrade!, pattern: 0x55 });
    pointStable(imagesDir, b.engine2);
    rows = (await ls()).filter((r) => r.name.startsWith(tag));
    // A rebuild in the store is newer for the VM made from the store, not for the installed one.
    await storeBuild(builderStore, 'demo', 'host-installed', '20260102000300', { parent: sb.upgrade!, pattern: 0x45 });
    rows = (await ls()).filter((r) => r.name.startsWith(tag));
    expect(rows.find((r) => r.name === a)!.newerBuild).toBe('12-20260102000200');
    expect(rows.find((r) => r.name === h1)!.newerBuild).toBeUndefined();
    expect(rows.find((r) => r.name === h2)!.newerBuild).toBe('12-20260102000300');
    // The VM still runs on its build: its overlay did not move with the stable name.
    expect((await qemuImg.chain(made[a]!.overlay, { shared: true })).map((i) => i.filename)).toEqual(made[a]!.backingChain);
    expect((await cli(['vm', 'ssh', a, '--', 'true'], env)).code).toBe(0);
  });

  it('a name that is taken (by a domain, or by an overlay) exits 2 and changes nothing', async () => {
    const before = statSync(made[a]!.overlay).mtimeMs;
    const r = await cli(['vm', 'create', a, '--set', 'demo', '--layer', 'base'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`a libvirt domain named '${a}' already exists`);
    expect(statSync(made[a]!.overlay).mtimeMs).toBe(before);
    expect(await domainState(a)).toBe('running');
  });

  it('vm rm, stop, start, ssh and console with another VM directory (another job sharing the host) exit 2 and leave the VM alone', async () => {
    const elsewhere = path.join(work, 'other-vms');
    mkdirSync(elsewhere, { recursive: true });
    for (const sub of [['rm', a], ['stop', a], ['start', a], ['ssh', a, '--vm-dir', elsewhere, '--', 'true'], ['console', a]]) {
      const args = sub.includes('--vm-dir') ? ['vm', ...sub] : ['vm', ...sub, '--vm-dir', elsewhere];
      const r = await cli(args, env);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(`VM '${a}' has its overlay in ${vmDir}, not in the VM directory ${elsewhere}; not touching it (ost-images vm ${sub[0]} ${a} --vm-dir ${vmDir})`);
      expect(r.stdout).toBe('');
    }
    // Through the environment too, as a CI job sets it.
    const viaEnv = await cli(['vm', 'stop', a], { ...env, OST_IMAGES_VM_DIR: elsewhere });
    expect(viaEnv.code, viaEnv.stderr).toBe(2);
    expect(await domainState(a)).toBe('running');
    expect(existsSync(made[a]!.overlay)).toBe(true);
    expect((await cli(['vm', 'ssh', a, '--', 'true'], env)).code).toBe(0);
  });

  it('vm console prints the console log', async () => {
    const r = await cli(['vm', 'console', h2], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('tiny guest: sshd started');
  });

  it('images: sets, layers, builds, where the stable names point, chains, and which VM uses which build', async () => {
    const r = await cli(['images', '--json'], env);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout) as {
      sets: { set: string; key: string; layers: { layer: string; stable: { path: string; target: string }; builds: { build: string; file: string; current: boolean; chain: string[]; usedBy: string[] }[] }[] }[];
      vms: { vm: string; uses: string[] }[];
    };
    const demo = rep.sets.find((s) => s.set === 'demo')!;
    expect(demo.key).toBe(key);
    const engine = demo.layers.find((l) => l.layer === 'engine-installed')!;
    expect(engine.stable).toEqual({ path: path.join(imagesDir, 'demo-engine-installed.qcow2'), target: b.engine2!.file });
    expect(engine.builds.map((x) => [x.build, x.current, x.usedBy])).toEqual([
      ['12-20260102000200', true, []],
      ['12-20260101000200', false, [a]],
    ]);
    expect(engine.builds[1]!.chain).toEqual([b.upgrade!.file, b.base!.file]);
    const base = demo.layers.find((l) => l.layer === 'base')!;
    expect(base.builds[0]!.usedBy.sort()).toEqual([a, h1].sort());
    expect(rep.vms.find((v) => v.vm === a)!.uses).toEqual(['demo/engine-installed 12-20260101000200', 'demo/upgrade 12-20260101000100', 'demo/base 12-20260101000000']);
  });

  const removed = async (n: string): Promise<void> => {
    expect(await domainState(n)).toBeUndefined();
    expect(existsSync(made[n]!.overlay)).toBe(false);
    expect(existsSync(made[n]!.consoleLog)).toBe(false);
  };

  it('vm rm removes a running VM: domain, overlay and console log', async () => {
    for (const n of [a, h1]) {
      expect((await cli(['vm', 'rm', n], env)).code).toBe(0);
      await removed(n);
    }
    expect((await cli(['vm', 'rm', a], env)).code).toBe(2);
  });

  it('vm stop keeps the definition and the overlay; vm ssh then exits 2; vm start brings it back', async () => {
    const s = await cli(['vm', 'stop', h2], env);
    expect(s.code).toBe(0);
    expect(await domainState(h2)).toBe('shut off');
    expect(existsSync(made[h2]!.overlay)).toBe(true);
    const r = await cli(['vm', 'ssh', h2, '--', 'true'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is not running');
    const st = await cli(['vm', 'start', h2, '--json'], env);
    expect(st.code).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({ name: h2, port: made[h2]!.port });
    expect((await cli(['vm', 'ssh', h2, '--', 'true'], env)).code).toBe(0);
  });

  it('vm rm removes a stopped VM', async () => {
    expect((await cli(['vm', 'stop', h2], env)).code).toBe(0);
    expect((await cli(['vm', 'rm', h2], env)).code).toBe(0);
    await removed(h2);
    expect(await ours()).toEqual([]);
    expect(vmFiles()).toEqual([]);
  });
});

describe('ost-images vm: a VM that does not come up', () => {
  it('one that powers off: exit 1 at once with the console tail; no domain, no overlay; the log kept', async () => {
    const n = vmName('off');
    const r = await cli(['vm', 'create', n, '--set', 'demo', '--layer', 'poweroff', '--memory', '256', '--timeout', '600'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`VM ${n} did not come up: the VM stopped (libvirt state: shut off)`);
    expect(r.stderr).toContain('--- last lines of its console ---');
    expect(r.stderr).toContain('tiny guest: no sshd here, powering off');
    expect(await domainState(n)).toBeUndefined();
    expect(vmFiles()).toEqual([`${n}.console.log`]);
    // The next VM of that name starts with a fresh log.
  });

  it('one that never boots: exit 1 at the timeout; with --keep its domain and overlay stay until vm rm', async () => {
    const n = vmName('blank');
    const r = await cli(['vm', 'create', n, '--set', 'demo', '--layer', 'blank', '--memory', '256', '--timeout', '5'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`VM ${n} did not come up: no SSH login on 127.0.0.1:[0-9]+ within 5s`));
    expect(await domainState(n)).toBeUndefined();
    expect(existsSync(path.join(vmDir, `${n}.qcow2`))).toBe(false);

    const k = await cli(['vm', 'create', n, '--set', 'demo', '--layer', 'blank', '--memory', '256', '--timeout', '5', '--keep'], env);
    expect(k.code).toBe(1);
    expect(k.stderr).toContain(`Kept for inspection (--keep): domain '${n}'`);
    expect(await domainState(n)).toBe('running');
    expect(existsSync(path.join(vmDir, `${n}.qcow2`))).toBe(true);
    expect((await cli(['vm', 'rm', n], env)).code).toBe(0);
    expect(await domainState(n)).toBeUndefined();
    expect(existsSync(path.join(vmDir, `${n}.qcow2`))).toBe(false);
  });

  it('an interrupt while waiting: exit 130, no domain, no overlay', async () => {
    const n = vmName('int');
    const run = startCli(['vm', 'create', n, '--set', 'demo', '--layer', 'blank', '--memory', '256', '--timeout', '600'], env);
    // The line, not a deadline: starting a VM on a busy machine takes what it takes (the test's
    // timeout bounds a hang), and a CLI that ends early fails this at once.
    await run.until(/waiting for SSH/);
    expect(await domainState(n)).toBe('running');
    process.kill(-run.child.pid!, 'SIGINT');
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(await domainState(n)).toBeUndefined();
    expect(existsSync(path.join(vmDir, `${n}.qcow2`))).toBe(false);
  });

  it('leaves nothing of this run in libvirt', async () => {
    expect(await ours()).toEqual([]);
    expect(readFileSync(path.join(vmDir, `${vmName('off')}.console.log`), 'utf8')).toContain('powering off');
  });
});

describe('remove-old on a test machine with VMs made by vm', () => {
  it("keeps every build a stopped VM's overlay is backed by, says which VM keeps which, and lets it go after vm rm", async () => {
    // Real packages from a store, installed with dnf into a root, as a test machine gets them.
    const ls = loadLayerSet(writeLayerSet(demoSet({ isDefault: true })).layersDir, 'demo');
    const keys = computeKeys(ls);
    const store = new Store(path.join(tmp, 'store'));
    const repo = path.join(tmp, 'repo');
    const root = path.join(tmp, 'machine');
    const installed = path.join(root, 'usr/share/ost-images');
    const nvr = (r: BuildRecord) => `ost-images-demo-${r.layer}-${r.version}-${r.release}`;
    const base = await storeBuild(store, 'demo', 'base', '20260101000000', { from: path.join(work, 'tiny.qcow2'), keyFile: path.join(work, 'key') }, keys.get('base'));
    const upgrade = await storeBuild(store, 'demo', 'upgrade', '20260101000100', { parent: base, pattern: 0x22 }, keys.get('upgrade'));
    const engines: BuildRecord[] = [];
    const rpms: string[] = [];
    for (const [i, release] of ['20260101000200', '20260102000200', '20260103000200'].entries()) {
      engines.push(await storeBuild(store, 'demo', 'engine-installed', release, { parent: upgrade, pattern: 0x30 + i }));
      rpms.push(...(await packageLayers(ls, i === 0 ? ['base', 'upgrade', 'engine-installed'] : ['engine-installed'], store)).map((p) => p.rpm));
    }
    await publish(repo, rpms);
    const [e1, e2, e3] = engines as [BuildRecord, BuildRecord, BuildRecord];
    await installInto(root, repo, [nvr(e1)]);

    // A VM on the first engine build, then stopped: no process has its chain open any more.
    const n = vmName('kept');
    const c = await cli(['vm', 'create', n, '--set', 'demo', '--layer', 'engine-installed', '--images-dir', installed, '--memory', '256', '--cpus', '1', '--json'], env);
    expect(c.code, c.stderr).toBe(0);
    expect((JSON.parse(c.stdout) as Created).buildFile).toBe(path.join(installed, e1.image));
    expect((await cli(['vm', 'stop', n], env)).code).toBe(0);
    await installInto(root, repo, [nvr(e2), nvr(e3)]);

    const r = await cli(['remove-old', '--root', root, '--keep', '1', '--vm-dir', vmDir, '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { removed: string[]; kept: { nvr: string; why: string }[]; vms: { vm: string; state: string; nvr: string }[] };
    expect(out.removed).toEqual([nvr(e2)]);
    expect(out.vms.map((v) => `${v.vm} ${v.state} ${v.nvr}`).sort()).toEqual([base, upgrade, e1].map((x) => `${n} shut off ${nvr(x)}`).sort());
    expect(out.kept.find((k) => k.nvr === nvr(e1))!.why).toBe(`VM ${n} (shut off) is backed by it`);
    expect(r.stderr).toContain(`keeping ${nvr(e1)}: VM ${n} (shut off) is backed by it`);
    expect(await installedNvrs(root)).toEqual([base, upgrade, e1, e3].map(nvr).sort());

    // Once the VM is removed, its build is just an old build.
    expect((await cli(['vm', 'rm', n], env)).code).toBe(0);
    const again = JSON.parse((await cli(['remove-old', '--root', root, '--keep', '1', '--vm-dir', vmDir, '--json'], env)).stdout) as { removed: string[]; vms: unknown[] };
    expect(again).toMatchObject({ removed: [nvr(e1)], vms: [] });
    expect(await installedNvrs(root)).toEqual([base, upgrade, e3].map(nvr).sort());
  }, 600_000);
});
