// The names a test machine's framework opens (`/usr/share/ost-images/<set>-<layer>.qcow2`,
// `-pkglist.txt`, `<set>_id_rsa`), kept by the layer packages' own Lua scriptlets: real rpmbuild,
// createrepo_c and dnf --installroot (no ost-images on the "test machine"), tiny real qcow2 chains.
import { spawn } from 'node:child_process';
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
import type { BuildRecord } from '../../src/records/build.js';
import { Store } from '../../src/store/store.js';
import { dnfRemove } from '../../src/tools/dnf.js';
import * as qemuImg from '../../src/tools/qemu-img.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { fakeBuild } from '../helpers/tiny.js';
import { run } from '../helpers/run.js';
import { removeTree, testTmp } from '../helpers/tmp.js';
import { dnf } from '../../src/tools/dnf.js';
import { repoUrl } from '../../src/repository/read.js';
import { mkdtempSync } from 'node:fs';

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
async function rpmVerifyClean(root: string): Promise<void> {
  const r = await run('rpm', ['--root', root, '-Va']);
  expect(r.stdout + r.stderr).toBe('');
  expect(r.code).toBe(0);
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
    await rpmVerifyClean(root);
  });

  it('install build 2 beside it: the names move to 2 while a reader never misses them; an overlay on build 1 keeps build 1', async () => {
    // What `vm create` does: an overlay on the resolved build file, never on the name.
    const overlay = path.join(tmp, 'vm1.qcow2');
    await qemuImg.create(overlay, { backing: path.join(dir(root), `demo-engine-installed-12-${R1}.qcow2`) });
    const reader = startReader([path.join(dir(root), 'demo-engine-installed.qcow2'), path.join(dir(root), 'demo-base-pkglist.txt')]);
    await reader.ready;
    const from = await reader.mark();
    await installInto(root, repo, [NVR('demo', 'engine-installed', R2)]);
    const to = await reader.mark();
    const seen = await reader.stop();
    expect(seen.errors).toEqual([]);
    expectSwitchedWhileRead(seen, { from, to }, [
      [`demo-engine-installed-12-${R1}.qcow2`, `demo-engine-installed-12-${R2}.qcow2`],
      [`demo-base-12-${R1}.packages`, `demo-base-12-${R2}.packages`],
    ]);
    expect(names(root)['demo-engine-installed.qcow2']).toBe(`demo-engine-installed-12-${R2}.qcow2`);
    expect(names(root)['demo-base.qcow2']).toBe(`demo-base-12-${R2}.qcow2`);
    expect(names(root)['demo-upgrade-pkglist.txt']).toBe(`demo-upgrade-12-${R2}.packages`);
    const c = await qemuImg.chain(overlay);
    expect(c.map((i) => path.basename(i.filename))).toEqual(['vm1.qcow2', `demo-engine-installed-12-${R1}.qcow2`, `demo-upgrade-12-${R1}.qcow2`, `demo-base-12-${R1}.qcow2`]);
    await rpmVerifyClean(root);
  });

  it('a real `dnf upgrade` from build 1 to build 2: the names move while a reader opens them in a loop, never missing', async () => {
    const up = path.join(tmp, 'root-upgrade');
    await installInto(up, repo, [NVR('demo', 'engine-installed', R1)]);
    const reader = startReader([path.join(dir(up), 'demo-engine-installed.qcow2'), path.join(dir(up), 'demo-upgrade.qcow2')]);
    await reader.ready;
    const from = await reader.mark();
    const cacheDir = mkdtempSync(path.join(tmp, 'dnf-cache-'));
    await dnf({ root: up, repoUrl: repoUrl(repo).replace(/\/?$/, '/'), cacheDir }, ['upgrade']);
    const to = await reader.mark();
    const seen = await reader.stop();
    expect(seen.errors).toEqual([]);
    expectSwitchedWhileRead(seen, { from, to }, [
      [`demo-engine-installed-12-${R1}.qcow2`, `demo-engine-installed-12-${R2}.qcow2`],
      [`demo-upgrade-12-${R1}.qcow2`, `demo-upgrade-12-${R2}.qcow2`],
    ]);
    // Install-only: build 1 stays beside build 2.
    expect(existsSync(path.join(dir(up), `demo-engine-installed-12-${R1}.qcow2`))).toBe(true);
    await rpmVerifyClean(up);
  });

  it('newest by version-release, not by file time: installing the older build later changes nothing', async () => {
    const r2first = path.join(tmp, 'root-order');
    await installInto(r2first, repo, [NVR('demo', 'engine-installed', R2)]);
    await installInto(r2first, repo, [NVR('demo', 'engine-installed', R1)]);
    expect(names(r2first)['demo-engine-installed.qcow2']).toBe(`demo-engine-installed-12-${R2}.qcow2`);
    await rpmVerifyClean(r2first);
  });

  it('a flat variant has names of its own, beside those of the chain', async () => {
    await installInto(root, repo, [NVR('demo', 'engine-installed-flat', R1)]);
    const n = names(root);
    expect(n['demo-engine-installed-flat.qcow2']).toBe(`demo-engine-installed-flat-12-${R1}.qcow2`);
    expect(n['demo-engine-installed-flat-pkglist.txt']).toBe(`demo-engine-installed-flat-12-${R1}.packages`);
    // The chain's names are untouched: build 2 of the chain stays the newest engine-installed.
    expect(n['demo-engine-installed.qcow2']).toBe(`demo-engine-installed-12-${R2}.qcow2`);
    expect(await qemuImg.chain(path.join(dir(root), 'demo-engine-installed-flat.qcow2'))).toHaveLength(1);
    await rpmVerifyClean(root);
    await dnfRemove(root, [NVR('demo', 'engine-installed-flat', R1)]);
    expect(names(root)['demo-engine-installed-flat.qcow2']).toBeUndefined();
    expect(names(root).demo_id_rsa).toBe('file');
    await rpmVerifyClean(root);
  });

  it('a second set has names of its own; neither touches the other', async () => {
    const before = names(root);
    await installInto(root, repo, [NVR('other', 'host-installed', R1)]);
    const after = names(root);
    for (const [k, v] of Object.entries(before)) expect(after[k]).toBe(v);
    expect(after['other-host-installed.qcow2']).toBe(`other-host-installed-12-${R1}.qcow2`);
    expect(after.other_id_rsa).toBe('file');
    await rpmVerifyClean(root);
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
    const from = await reader.mark();
    await dnfRemove(root, [NVR('demo', 'engine-installed', R2), NVR('demo', 'upgrade', R2), NVR('demo', 'base', R2)]);
    const to = await reader.mark();
    const seen = await reader.stop();
    expect(seen.errors).toEqual([]);
    expectSwitchedWhileRead(seen, { from, to }, [
      [`demo-engine-installed-12-${R2}.qcow2`, `demo-engine-installed-12-${R1}.qcow2`],
      [`demo-base-12-${R2}.qcow2`, `demo-base-12-${R1}.qcow2`],
    ]);
    expect(names(root)['demo-engine-installed.qcow2']).toBe(`demo-engine-installed-12-${R1}.qcow2`);
    expect(names(root)['demo-base.qcow2']).toBe(`demo-base-12-${R1}.qcow2`);
    expect(names(root).demo_id_rsa).toBe('file');
    await rpmVerifyClean(root);
  });

  it('removing the last build of a set removes its names and key, and only its own', async () => {
    await dnfRemove(root, [NVR('demo', 'engine-installed', R1), NVR('demo', 'upgrade', R1), NVR('demo', 'base', R1)]);
    const left = names(root);
    expect(Object.keys(left).filter((n) => n.startsWith('demo'))).toEqual([]);
    expect(left['other-host-installed.qcow2']).toBe(`other-host-installed-12-${R1}.qcow2`);
    await rpmVerifyClean(root);
    await dnfRemove(root, [NVR('other', 'host-installed', R1), NVR('other', 'upgrade', R1), NVR('other', 'base', R1)]);
    expect(existsSync(dir(root))).toBe(false);
    expect(target(root, 'other-host-installed.qcow2')).toBeNull();
  });
});

/** Rounds a reader completes before it says ready, and after it is told to stop: reads on both sides of every switch. */
const MIN_ROUNDS = 200;

/** What a name pointed at, round after round: one segment per target, with the rounds it was read in. */
interface Segment {
  target: string;
  first: number;
  last: number;
  reads: number;
}
interface ReaderResult {
  rounds: number;
  errors: string[];
  seen: Segment[][];
}

/**
 * Each name switched exactly once, from `[old, new]`, and the reader completed at least MIN_ROUNDS
 * reads of it on each side of the switch (counted, not timed); the switch fell between the marks
 * taken before and after the transaction.
 */
function expectSwitchedWhileRead(r: ReaderResult, marks: { from: number; to: number }, targets: [string, string][]): void {
  targets.forEach(([before, after], i) => {
    const segs = r.seen[i]!;
    expect(segs.map((g) => g.target), `name ${i}`).toEqual([before, after]);
    expect(segs[0]!.reads, `reads of ${before}`).toBeGreaterThanOrEqual(MIN_ROUNDS);
    expect(segs[1]!.reads, `reads of ${after}`).toBeGreaterThanOrEqual(MIN_ROUNDS);
    // The first read of the new target came after the transaction began and by the round after it ended.
    expect(segs[1]!.first, `switch of ${before}`).toBeGreaterThan(marks.from);
    expect(segs[1]!.first, `switch of ${before}`).toBeLessThanOrEqual(marks.to + 1);
  });
}

/**
 * A separate process that opens the given names in a loop (following the links, as a consumer
 * does) until told to stop, recording every failure and, per name, each target it saw with the
 * rounds it saw it in. It says "ready" after MIN_ROUNDS rounds, so the test starts the transaction
 * only once the reader really reads; on SIGUSR2 it says which round it is at (a mark); on SIGTERM it
 * completes MIN_ROUNDS more rounds, then reports. Counts, not timing.
 */
function startReader(files: string[]): { ready: Promise<void>; mark: () => Promise<number>; stop: () => Promise<ReaderResult> } {
  const code = `
    const fs = require('fs');
    const files = JSON.parse(process.argv[1]);
    const MIN = Number(process.argv[2]);
    let stopping = false, rounds = 0, after = 0; const errors = [];
    const seen = files.map(() => []);
    process.on('SIGTERM', () => { stopping = true; });
    process.on('SIGUSR2', () => process.stderr.write('mark ' + rounds + '\\n'));
    (function loop() {
      rounds++;
      files.forEach((f, i) => {
        try {
          const target = fs.readlinkSync(f);
          fs.closeSync(fs.openSync(f, 'r'));
          const s = seen[i], last = s[s.length - 1];
          if (last && last.target === target) { last.last = rounds; last.reads++; }
          else s.push({ target, first: rounds, last: rounds, reads: 1 });
        } catch (e) { errors.push(f + ': ' + e.code); }
      });
      if (rounds === MIN) process.stderr.write('ready\\n');
      if (stopping && ++after >= MIN) { process.stdout.write(JSON.stringify({ rounds, errors: errors.slice(0, 20), seen })); return; }
      setImmediate(loop);
    })();`;
  const child = spawn(process.execPath, ['-e', code, JSON.stringify(files), String(MIN_ROUNDS)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    waiters.forEach((w) => w());
  });
  const done = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr.on('data', () => /^ready$/m.test(err) && resolve());
    child.on('exit', () => reject(new Error(`reader exited before it was ready: ${err}`)));
  });
  let marks = 0;
  const mark = () =>
    new Promise<number>((resolve) => {
      const n = ++marks;
      const check = () => {
        const all = [...err.matchAll(/^mark ([0-9]+)$/gm)];
        if (all.length < n) return;
        waiters.delete(check);
        resolve(Number(all[n - 1]![1]));
      };
      waiters.add(check);
      child.kill('SIGUSR2');
    });
  return {
    ready,
    mark,
    stop: async () => {
      child.kill('SIGTERM');
      await done;
      return JSON.parse(out) as ReaderResult;
    },
  };
}
