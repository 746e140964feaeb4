// The names a test machine's framework opens (`/usr/share/ost-images/<set>-<layer>.qcow2`,
// `-pkglist.txt`, `<set>_id_rsa`), kept by the layer packages' own Lua scriptlets: real rpmbuild,
// createrepo_c and dnf --installroot (no ost-images on the "test machine"), tiny real qcow2 chains.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installInto } from '../../src/consume/install.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { packageLayers } from '../../src/package/package.js';
import { flattenLayers } from '../../src/builder/flatten.js';
import { computeKeys } from '../../src/plan/keys.js';
import { publish } from '../../src/publish/publish.js';
import { Store, type BuildRecord } from '../../src/store.js';
import { dnfRemove } from '../../src/tools/dnf.js';
import * as qemuImg from '../../src/tools/qemu-img.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { fakeBuild } from '../helpers/tiny.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('names');
const repo = path.join(tmp, 'repo');
let demo: LayerSet;
let other: LayerSet;
const R1 = '20260101000000';
const R2 = '20260102000000';

/** Every layer of a set as a fake build (with package lists), on the given parents, packaged. */
async function chain(ls: LayerSet, store: Store, release: string, pattern: number): Promise<{ recs: Record<string, BuildRecord>; rpms: string[] }> {
  const keys = computeKeys(ls);
  const recs: Record<string, BuildRecord> = {};
  for (const layer of ls.order) {
    const parent = ls.layers.get(layer)!.parent;
    recs[layer] = await fakeBuild(store, ls.set.name, layer, release, parent ? recs[parent] : undefined, pattern++, keys.get(layer), true);
  }
  await flattenLayers(ls, store);
  const rpms = (await packageLayers(ls, ls.order, store)).map((p) => p.rpm);
  return { recs, rpms };
}

const dir = (root: string) => path.join(root, 'usr/share/ost-images');
const target = (root: string, name: string) => (existsSync(path.join(dir(root), name)) || lstatOk(root, name) ? readlinkSync(path.join(dir(root), name)) : null);
function lstatOk(root: string, name: string): boolean {
  try {
    lstatSync(path.join(dir(root), name));
    return true;
  } catch {
    return false;
  }
}

/** `rpm -Va` over the root: no output, exit 0 (the names are nobody's files; the key files are identical). */
function rpmVerifyClean(root: string): void {
  const r = spawnSync('rpm', ['--root', root, '-Va'], { encoding: 'utf8' });
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
}

/** The names that exist now, and where each points (files: 'file'). */
function names(root: string): Record<string, string> {
  if (!existsSync(dir(root))) return {};
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir(root)).sort()) {
    const st = lstatSync(path.join(dir(root), f));
    if (st.isSymbolicLink()) out[f] = readlinkSync(path.join(dir(root), f));
    else if (!/-\d+-\d{14}\./.test(f)) out[f] = 'file';
  }
  return out;
}

const NVR = (set: string, layer: string, r: string) => `ost-images-${set}-${layer}-12-${r}`;

beforeAll(async () => {
  demo = loadLayerSet(writeLayerSet(demoSet({ isDefault: true, extraSetKeys: 'flatten: [engine-installed]' })).layersDir, 'demo');
  other = loadLayerSet(writeLayerSet(demoSet({ isDefault: false }), 'other').layersDir, 'other');
  const store = new Store(path.join(tmp, 'store'));
  const one = await chain(demo, store, R1, 0x11);
  // Build 2 of every layer: a new base, so a whole new chain (the key pair is the same: the set's).
  const two = await chain(demo, store, R2, 0x21);
  const o = await chain(other, store, R1, 0x31);
  await publish(repo, [...one.rpms, ...two.rpms, ...o.rpms]);
}, 300_000);

afterAll(() => removeTree(tmp));

describe('stable names kept by rpm', () => {
  const root = path.join(tmp, 'root');

  it('install build 1: every name of the chain points at build 1; rpm -V is clean', async () => {
    await installInto(root, repo, [NVR('demo', 'engine-installed', R1)]);
    expect(names(root)).toEqual({
      'demo-base-pkglist.txt': `demo-base-12-${R1}.packages`,
      'demo-base.qcow2': `demo-base-12-${R1}.qcow2`,
      'demo-engine-installed-pkglist.txt': `demo-engine-installed-12-${R1}.packages`,
      'demo-engine-installed.qcow2': `demo-engine-installed-12-${R1}.qcow2`,
      'demo-upgrade-pkglist.txt': `demo-upgrade-12-${R1}.packages`,
      'demo-upgrade.qcow2': `demo-upgrade-12-${R1}.qcow2`,
      demo_id_rsa: 'file',
      'demo_id_rsa.pub': 'file',
    });
    expect(statSync(path.join(dir(root), 'demo_id_rsa')).mode & 0o777).toBe(0o600);
    // The framework opens the name itself: the chain resolves through it.
    const c = await qemuImg.chain(path.join(dir(root), 'demo-engine-installed.qcow2'));
    expect(c.map((i) => path.basename(i.filename))).toEqual(['demo-engine-installed.qcow2', `demo-upgrade-12-${R1}.qcow2`, `demo-base-12-${R1}.qcow2`]);
    expect(readFileSync(path.join(dir(root), 'demo-engine-installed-pkglist.txt'), 'utf8')).toContain(`engine-installed-marker ${R1}`);
    rpmVerifyClean(root);
  });

  it('install build 2 beside it: the names move to 2 while a reader never misses them; an overlay on build 1 keeps build 1', async () => {
    // What `vm create` does: an overlay on the resolved build file, never on the name.
    const overlay = path.join(tmp, 'vm1.qcow2');
    await qemuImg.create(overlay, { backing: path.join(dir(root), `demo-engine-installed-12-${R1}.qcow2`) });
    const reader = startReader([path.join(dir(root), 'demo-engine-installed.qcow2'), path.join(dir(root), 'demo-base-pkglist.txt')]);
    await reader.ready;
    await installInto(root, repo, [NVR('demo', 'engine-installed', R2)]);
    const seen = await reader.stop();
    expect(seen.errors).toEqual([]);
    expect(names(root)['demo-engine-installed.qcow2']).toBe(`demo-engine-installed-12-${R2}.qcow2`);
    expect(names(root)['demo-base.qcow2']).toBe(`demo-base-12-${R2}.qcow2`);
    expect(names(root)['demo-upgrade-pkglist.txt']).toBe(`demo-upgrade-12-${R2}.packages`);
    const c = await qemuImg.chain(overlay);
    expect(c.map((i) => path.basename(i.filename))).toEqual(['vm1.qcow2', `demo-engine-installed-12-${R1}.qcow2`, `demo-upgrade-12-${R1}.qcow2`, `demo-base-12-${R1}.qcow2`]);
    rpmVerifyClean(root);
  });

  it('newest by version-release, not by file time: installing the older build later changes nothing', async () => {
    const r2first = path.join(tmp, 'root-order');
    await installInto(r2first, repo, [NVR('demo', 'engine-installed', R2)]);
    await installInto(r2first, repo, [NVR('demo', 'engine-installed', R1)]);
    expect(names(r2first)['demo-engine-installed.qcow2']).toBe(`demo-engine-installed-12-${R2}.qcow2`);
    rpmVerifyClean(r2first);
  });

  it('a flat variant has names of its own, beside those of the chain', async () => {
    await installInto(root, repo, [NVR('demo', 'engine-installed-flat', R1)]);
    const n = names(root);
    expect(n['demo-engine-installed-flat.qcow2']).toBe(`demo-engine-installed-flat-12-${R1}.qcow2`);
    expect(n['demo-engine-installed-flat-pkglist.txt']).toBe(`demo-engine-installed-flat-12-${R1}.packages`);
    // The chain's names are untouched: build 2 of the chain stays the newest engine-installed.
    expect(n['demo-engine-installed.qcow2']).toBe(`demo-engine-installed-12-${R2}.qcow2`);
    expect(await qemuImg.chain(path.join(dir(root), 'demo-engine-installed-flat.qcow2'))).toHaveLength(1);
    rpmVerifyClean(root);
    await dnfRemove(root, [NVR('demo', 'engine-installed-flat', R1)]);
    expect(names(root)['demo-engine-installed-flat.qcow2']).toBeUndefined();
    expect(names(root).demo_id_rsa).toBe('file');
    rpmVerifyClean(root);
  });

  it('a second set has names of its own; neither touches the other', async () => {
    const before = names(root);
    await installInto(root, repo, [NVR('other', 'host-installed', R1)]);
    const after = names(root);
    for (const [k, v] of Object.entries(before)) expect(after[k]).toBe(v);
    expect(after['other-host-installed.qcow2']).toBe(`other-host-installed-12-${R1}.qcow2`);
    expect(after.other_id_rsa).toBe('file');
    rpmVerifyClean(root);
  });

  it('the directory can move: a copy elsewhere resolves chains and names', async () => {
    const moved = path.join(tmp, 'moved');
    cpSync(dir(root), moved, { recursive: true, verbatimSymlinks: true });
    const c = await qemuImg.chain(path.join(moved, 'demo-engine-installed.qcow2'));
    expect(c.every((i) => i.filename.startsWith(moved))).toBe(true);
    expect(c).toHaveLength(3);
    // The framework's own way: an overlay on the name as it is (not resolved).
    const vm = path.join(tmp, 'framework-vm.qcow2');
    await qemuImg.create(vm, { backing: path.join(moved, 'demo-engine-installed.qcow2') });
    await qemuImg.check(vm);
  });

  it('dnf remove of build 2: the names go back to build 1, never dangling on the way', async () => {
    const reader = startReader([path.join(dir(root), 'demo-engine-installed.qcow2'), path.join(dir(root), 'demo-base.qcow2')]);
    await reader.ready;
    await dnfRemove(root, [NVR('demo', 'engine-installed', R2), NVR('demo', 'upgrade', R2), NVR('demo', 'base', R2)]);
    expect((await reader.stop()).errors).toEqual([]);
    expect(names(root)['demo-engine-installed.qcow2']).toBe(`demo-engine-installed-12-${R1}.qcow2`);
    expect(names(root)['demo-base.qcow2']).toBe(`demo-base-12-${R1}.qcow2`);
    expect(names(root).demo_id_rsa).toBe('file');
    rpmVerifyClean(root);
  });

  it('removing the last build of a set removes its names and key, and only its own', async () => {
    await dnfRemove(root, [NVR('demo', 'engine-installed', R1), NVR('demo', 'upgrade', R1), NVR('demo', 'base', R1)]);
    const left = names(root);
    expect(Object.keys(left).filter((n) => n.startsWith('demo'))).toEqual([]);
    expect(left['other-host-installed.qcow2']).toBe(`other-host-installed-12-${R1}.qcow2`);
    rpmVerifyClean(root);
    await dnfRemove(root, [NVR('other', 'host-installed', R1), NVR('other', 'upgrade', R1), NVR('other', 'base', R1)]);
    expect(existsSync(dir(root))).toBe(false);
    expect(target(root, 'other-host-installed.qcow2')).toBeNull();
  });
});

/**
 * A separate process that opens the given names in a loop (following the links, as a consumer
 * does) until told to stop, recording every failure. It says "ready" after its first full round,
 * so the test starts the transaction only once the reader really reads; no timing is assumed.
 */
function startReader(files: string[]): { ready: Promise<void>; stop: () => Promise<{ rounds: number; errors: string[] }> } {
  const code = `
    const fs = require('fs');
    const files = JSON.parse(process.argv[1]);
    let stop = false, rounds = 0; const errors = [];
    process.on('SIGTERM', () => { stop = true; });
    (function loop() {
      for (const f of files) { try { fs.closeSync(fs.openSync(f, 'r')); } catch (e) { errors.push(f + ': ' + e.code); } }
      if (++rounds === 1) process.stderr.write('ready\\n');
      if (stop) { process.stdout.write(JSON.stringify({ rounds, errors: errors.slice(0, 20) })); return; }
      setImmediate(loop);
    })();`;
  const child = spawn(process.execPath, ['-e', code, JSON.stringify(files)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.on('exit', () => reject(new Error('reader exited before it was ready')));
  });
  const done = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    ready,
    stop: async () => {
      child.kill('SIGTERM');
      await done;
      return JSON.parse(out) as { rounds: number; errors: string[] };
    },
  };
}
