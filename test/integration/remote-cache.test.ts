// The published repository as a shared cache: layers packaged and published from one store are
// taken by a builder with an empty store instead of being built, byte for byte.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { Store } from '../../src/store/store.js';
import { releaseTime, shippedRecord } from '../../src/records/build.js';
import { cli } from '../helpers/cli.js';
import { serveDirectory } from '../helpers/http.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { fakeBuild, publishedDemoChain } from '../helpers/tiny.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('remote');
const storeA = new Store(path.join(tmp, 'a'));
const storeB = path.join(tmp, 'b');
const repo = path.join(tmp, 'repo');
let ls: LayerSet;
let layersDir: string;
let server: Awaited<ReturnType<typeof serveDirectory>>;
const env = { OST_IMAGES_KVM: '0' };

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

beforeAll(async () => {
  layersDir = writeLayerSet(demoSet({ isDefault: true })).layersDir;
  ls = loadLayerSet(layersDir, 'demo');
  await publishedDemoChain(ls, storeA, repo);
  server = await serveDirectory(repo);
});

afterAll(() => {
  server?.stop();
  removeTree(tmp);
});

describe('the repository as a remote cache', () => {
  const args = () => ['--set', 'demo', '--layers-dir', layersDir, '--store', storeB, '--cache-repo', server.url, '--json'];

  it('plans every layer as "in repository" for an empty store', async () => {
    const r = await cli(['plan', ...args()], env);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as { entries: { layer: string; action: string; reason: string }[] };
    expect(plan.entries.map((e) => `${e.layer}:${e.action}:${e.reason}`)).toEqual([
      'base:fetch:in repository: ost-images-demo-base-12-20260101000000',
      'upgrade:fetch:in repository: ost-images-demo-upgrade-12-20260101000100',
      'engine-installed:fetch:in repository: ost-images-demo-engine-installed-12-20260101000200',
      'host-installed:fetch:in repository: ost-images-demo-host-installed-12-20260101000300',
    ]);
  });

  it('builds nothing: the chain is taken from the repository, byte for byte, with its packages', async () => {
    const r = await cli(['build', ...args()], env);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { layers: { action: string }[] }).layers.map((l) => l.action)).toEqual(['fetched', 'fetched', 'fetched', 'fetched']);
    const b = new Store(storeB);
    for (const layer of ls.order) {
      const [ra, rb] = [storeA.current('demo', layer)!, b.current('demo', layer)!];
      // The record as the package ships it (no run times: the release says when the build started).
      expect(shippedRecord(rb)).toEqual(shippedRecord(ra));
      expect(rb.builtAt).toBe(releaseTime(ra.release));
      expect(sha(b.imagePath('demo', rb.image))).toBe(sha(storeA.imagePath('demo', ra.image)));
    }
    // The published packages themselves, so packaging them again changes nothing.
    expect(readdirSync(b.rpmsDir('demo')).sort()).toEqual(readdirSync(path.join(repo, 'packages')).sort());
    const again = await cli(['package', '--set', 'demo', '--layers-dir', layersDir, '--store', storeB, '--json'], env);
    expect((JSON.parse(again.stdout) as { action: string }[]).map((p) => p.action)).toEqual(['exists', 'exists', 'exists', 'exists']);
  });

  it('a second build with the cache finds everything in the local store', async () => {
    const r = await cli(['build', ...args()], env);
    expect((JSON.parse(r.stdout) as { layers: { action: string }[] }).layers.map((l) => l.action)).toEqual(['reused', 'reused', 'reused', 'reused']);
  });
});

describe('cache ls and gc', () => {
  it('lists builds and deletes the ones no longer needed, never a parent of a kept build', async () => {
    const common = ['--set', 'demo', '--layers-dir', layersDir, '--store', storeA.root];
    const upgrade = storeA.current('demo', 'upgrade')!;
    await fakeBuild(storeA, 'demo', 'engine-installed', '20260105000000', upgrade, 0x66);
    const newest = await fakeBuild(storeA, 'demo', 'engine-installed', '20260106000000', upgrade, 0x77);
    // Files a real build has beside its image: gc must take them along.
    for (const f of ['demo-engine-installed-12-20260105000000.packages', 'demo-engine-installed-12-20260105000000.package-diff.json', 'demo-engine-installed-flat-12-20260105000000.qcow2']) {
      writeFileSync(storeA.imagePath('demo', f), 'x');
    }
    const ls1 = JSON.parse((await cli(['cache', 'ls', '--json', ...common], env)).stdout) as { layer: string; build: string; current: boolean }[];
    expect(ls1.filter((r) => r.layer === 'engine-installed').map((r) => `${r.build}${r.current ? '*' : ''}`)).toEqual([
      '12-20260101000200', '12-20260105000000', '12-20260106000000*',
    ]);
    const dry = await cli(['cache', 'gc', '--keep', '1', '--dry-run', '--json', ...common], env);
    expect((JSON.parse(dry.stdout) as { removed: string[] }).removed).toEqual(['engine-installed 12-20260101000200', 'engine-installed 12-20260105000000']);
    expect(storeA.builds('demo', 'engine-installed')).toHaveLength(3);
    // The first engine build is published: keep it when asked to keep what the repository holds.
    const gc = await cli(['cache', 'gc', '--keep', '1', '--repo', repo, '--json', ...common], env);
    expect(gc.code, gc.stderr).toBe(0);
    expect((JSON.parse(gc.stdout) as { removed: string[] }).removed).toEqual(['engine-installed 12-20260105000000']);
    expect(storeA.builds('demo', 'engine-installed').map((r) => r.release)).toEqual(['20260101000200', newest.release]);
    expect(readdirSync(storeA.imagesDir('demo')).filter((f) => f.includes('20260105000000'))).toEqual([]);
    expect(storeA.current('demo', 'upgrade')).toEqual(upgrade);
  });
});
