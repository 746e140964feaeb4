// The pipeline's layer jobs through the real CLI on a tiny set (a busybox disk as the base, the
// chroot backend for the layers above), with a real staging repository served over HTTP whose
// access log says what each job downloaded: layers move between jobs (and runners, here: stores)
// through staging, parents are fetched byte for byte and never rebuilt, and a job whose key is
// already published downloads no image at all.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adoptPublishedKey, type LayerJobResult } from '../../src/jobs/ci.js';
import { runUpstreamFile } from '../../src/jobs/run-upstream.js';
import { publicKeyId, readRootKey } from '../../src/builder/root-key.js';
import { readRepoIndex } from '../../src/repository/read.js';
import { packageLayers } from '../../src/package/package.js';
import { computeKeys } from '../../src/plan/keys.js';
import { publish } from '../../src/publish/publish.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import { readSnapshot, servedStamp } from '../../src/repository/snapshot.js';
import { Store } from '../../src/store/store.js';
import { ROOT, cli } from '../helpers/cli.js';
import { serveDirectory, type Server } from '../helpers/http.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { fakeBuild, fakeBusyboxBase } from '../helpers/tiny.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('ci-layer');
const staging = path.join(tmp, 'staging');
const production = path.join(tmp, 'production');
const storeDir = (name: string) => path.join(tmp, `store-${name}`);
let layersDir: string;
let setDir: string;
let server: Server;

const files = {
  'set.yaml': 'distro: {family: debian, name: Debian, version: "12", codename: bookworm, mirror: "http://deb.debian.org/debian"}\npackage: {prefix: ost-images}\nflatten: [app]\n',
  'base/layer.yaml': 'base:\n  mmdebstrap: {packages: [busybox]}\n',
  'mid/layer.yaml': 'parent: base\nsteps:\n  - upload: {from: motd, to: /etc/motd}\n',
  'mid/motd': 'the middle layer\n',
  'app/layer.yaml': 'parent: mid\nsteps:\n  - upload: {from: app.txt, to: /etc/app.txt}\n',
  'app/app.txt': 'app\n',
  'tool/layer.yaml': 'parent: mid\nsteps:\n  - upload: {from: tool.txt, to: /etc/tool.txt}\n',
  'tool/tool.txt': 'tool\n',
};

/** What the pipeline sets for every job; staging is read over HTTP, production from its directory. */
const env = () => ({ OST_IMAGES_KVM: '0', OST_IMAGES_STAGING: staging, OST_IMAGES_STAGING_URL: server.url, OST_IMAGES_REPO: production, OST_IMAGES_REPO_URL: '', OST_IMAGES_UPLOAD: '' });
const layerJob = (store: string, layer: string, extraEnv: Record<string, string> = {}) =>
  cli(['ci', 'layer', '--set', 'tiny', '--layer', layer, '--layers-dir', layersDir, '--store', storeDir(store), '--backend', 'chroot', '--json'], { ...env(), ...extraEnv });

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const stagedFiles = () => readSnapshot(staging, servedStamp(staging)!).packages.map((p) => p.file).sort();

beforeAll(async () => {
  ({ layersDir, setDir } = writeLayerSet(files, 'tiny'));
  // The runner that made the base (as a base job would have): a busybox disk under the base's key.
  const work = mkdtempSync(path.join(tmp, 'mk-'));
  await fakeBusyboxBase(new Store(storeDir('a')), loadLayerSet(layersDir, 'tiny'), work);
  rmSync(work, { recursive: true });
  // Served before anything is published into it: the first jobs find a repository without metadata.
  mkdirSync(staging);
  server = await serveDirectory(staging);
}, 300_000);

afterAll(() => {
  server?.stop();
  removeTree(tmp);
});

describe('ci layer', () => {
  it('the base job stages its layer; staging starts empty and production need not exist', async () => {
    const r = await layerJob('a', 'base');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as LayerJobResult;
    expect(out).toMatchObject({ set: 'tiny', layer: 'base', status: 'staged', layers: [{ layer: 'base', action: 'reused' }] });
    expect(stagedFiles()).toEqual([`${out.package}.noarch.rpm`]);
    expect(existsSync(production)).toBe(false);
  });

  it('the next layer job builds its layer on the staged parent and stages only the new package', async () => {
    const r = await layerJob('a', 'mid');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as LayerJobResult;
    expect(out.layers).toEqual([{ layer: 'base', action: 'reused' }, { layer: 'mid', action: 'built' }]);
    expect(out.staged).toEqual([`${out.package}.noarch.rpm`]);
    expect(stagedFiles()).toHaveLength(2);
  }, 300_000);

  it('on another runner (an empty store) fetches the parents from staging byte for byte and builds only its own layer and its flat variant', async () => {
    server.mark();
    const r = await layerJob('b', 'app');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as LayerJobResult;
    expect(out.layers).toEqual([{ layer: 'base', action: 'fetched' }, { layer: 'mid', action: 'fetched' }, { layer: 'app', action: 'built' }]);
    expect(out.flat).toBe(out.package.replace('-app-', '-app-flat-'));
    expect(out.staged.sort()).toEqual([`${out.package}.noarch.rpm`, `${out.flat}.noarch.rpm`].sort());
    const [a, b] = [new Store(storeDir('a')), new Store(storeDir('b'))];
    for (const layer of ['base', 'mid']) {
      const [ra, rb] = [a.current('tiny', layer)!, b.current('tiny', layer)!];
      expect(rb.release).toBe(ra.release);
      expect(sha(b.imagePath('tiny', rb.image))).toBe(sha(a.imagePath('tiny', ra.image)));
    }
    // It downloaded the two parents' packages from staging, and nothing else of it.
    const rpms = (await server.settledRequests()).map((q) => q.path).filter((p) => p.endsWith('.rpm'));
    expect(rpms.map((p) => path.basename(p)).sort()).toEqual(stagedFiles().filter((f) => /-(base|mid)-/.test(f)));
    expect(stagedFiles()).toHaveLength(4);
  }, 300_000);

  it('run again with nothing changed, it only says the key is staged and downloads no image, on any runner', async () => {
    for (const store of ['b', 'c']) {
      const before = servedStamp(staging);
      server.mark();
      const r = await layerJob(store, 'app');
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as LayerJobResult;
      expect(out).toMatchObject({ status: 'already-staged', layers: [], staged: [] });
      expect(r.stderr).toMatch(new RegExp(`tiny app: key [0-9a-f]{12}… already staged as ${out.package} \\(and ${out.flat}\\); nothing to do`));
      const requests = (await server.settledRequests()).map((q) => q.path);
      expect(requests.filter((p) => !p.includes('/repodata/'))).toEqual([]);
      expect(servedStamp(staging)).toBe(before);
    }
    // The fresh runner did not even make an images directory.
    expect(existsSync(new Store(storeDir('c')).imagesDir('tiny'))).toBe(false);
  });

  it('refuses to build a parent whose key is not published, and stages nothing', async () => {
    writeFileSync(path.join(setDir, 'mid', 'motd'), 'changed, but its job has not run\n');
    try {
      const before = servedStamp(staging);
      const r = await layerJob('c', 'tool');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("tiny tool: a layer job builds only its own layer, never a parent");
      expect(r.stderr).toContain("parent 'mid'");
      expect(r.stderr).toContain("'ost-images ci layer --set tiny --layer mid', must pass first");
      expect(servedStamp(staging)).toBe(before);
      expect(existsSync(new Store(storeDir('c')).imagesDir('tiny'))).toBe(false);
    } finally {
      writeFileSync(path.join(setDir, 'mid', 'motd'), files['mid/motd']);
    }
  });

  it('with an upload command: the command gets the new package files, and the job checks staging has them afterwards', async () => {
    // A site's receiving end, standing in for `rsync` + a publish on the staging host.
    const receiver = path.join(tmp, 'receive.mjs');
    writeFileSync(receiver, `import { publish } from ${JSON.stringify(path.join(ROOT, 'dist', 'publish', 'publish.js'))};\nawait publish(${JSON.stringify(staging)}, process.argv.slice(2));\n`);
    // An upload command that does nothing is caught.
    const lazy = await layerJob('d', 'tool', { OST_IMAGES_STAGING: '', OST_IMAGES_UPLOAD: 'true' });
    expect(lazy.code).toBe(1);
    expect(lazy.stderr).toContain('the upload command ran, but staging');
    const r = await layerJob('d', 'tool', { OST_IMAGES_STAGING: '', OST_IMAGES_UPLOAD: `${process.execPath} ${receiver}` });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as LayerJobResult;
    expect(out).toMatchObject({ status: 'uploaded', staged: [`${out.package}.noarch.rpm`] });
    expect(stagedFiles()).toContain(`${out.package}.noarch.rpm`);
  }, 300_000);

  it('takes parents that only production has, and stages them with its layer so staging holds whole chains', async () => {
    // Yesterday's staging plays production here; today's staging is empty. app's inputs changed.
    const staging2 = path.join(tmp, 'staging2');
    writeFileSync(path.join(setDir, 'app', 'app.txt'), 'app, day two\n');
    try {
      const r = await layerJob('f', 'app', { OST_IMAGES_STAGING: staging2, OST_IMAGES_STAGING_URL: '', OST_IMAGES_REPO: staging });
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as LayerJobResult;
      expect(out.layers).toEqual([{ layer: 'base', action: 'fetched' }, { layer: 'mid', action: 'fetched' }, { layer: 'app', action: 'built' }]);
      const staged2 = readSnapshot(staging2, servedStamp(staging2)!).packages.map((p) => p.file).sort();
      expect(staged2).toEqual([...stagedFiles().filter((f) => /-(base|mid)-/.test(f)), `${out.package}.noarch.rpm`, `${out.flat}.noarch.rpm`].sort());
    } finally {
      writeFileSync(path.join(setDir, 'app', 'app.txt'), files['app/app.txt']);
    }
  }, 300_000);

  it('bad input exits 2 and writes nothing', async () => {
    const before = servedStamp(staging);
    const cases: [string[], Record<string, string>, string][] = [
      [['--layer', 'nosuch'], {}, "set 'tiny' has no layer 'nosuch'"],
      [['--layer', 'app-flat'], {}, "is a flattened variant: the job of layer 'app' makes it"],
      [['--layer', 'app'], { OST_IMAGES_STAGING: '', OST_IMAGES_STAGING_URL: '' }, 'the staging repository: give its directory'],
      [['--layer', 'app'], { OST_IMAGES_REPO: '' }, 'the production repository: give its directory'],
      [['--layer', 'app'], { OST_IMAGES_STAGING_URL: 'ftp://example.org/x' }, "--staging-url: 'ftp://example.org/x' is not a usable URL"],
    ];
    for (const [args, extra, message] of cases) {
      const r = await cli(['ci', 'layer', '--set', 'tiny', '--layers-dir', layersDir, '--store', storeDir('e'), ...args], { ...env(), ...extra });
      expect(r.stderr).toContain(message);
      expect(r.code).toBe(2);
    }
    expect(servedStamp(staging)).toBe(before);
    expect(existsSync(storeDir('e'))).toBe(false);
    expect(readdirSync(staging).filter((f) => f.startsWith('.incoming'))).toEqual([]);
  });
  it("jobs of one run plan with the upstream as the run's first job saw it: a mirror push between a parent's job and its child's does not make the child refuse", async () => {
    // A mirror of our own: its InRelease is what `mid` declares as its upstream.
    const mirrorDir = mkdtempSync(path.join(tmp, 'mirror-'));
    const inRelease = path.join(mirrorDir, 'InRelease');
    writeFileSync(inRelease, 'Date: before the push\n');
    const mirror = await serveDirectory(mirrorDir);
    try {
      const url = `${mirror.url}InRelease`;
      const { layersDir: dir } = writeLayerSet(
        {
          'set.yaml': files['set.yaml'].replace('flatten: [app]\n', ''),
          'base/layer.yaml': files['base/layer.yaml'],
          'mid/layer.yaml': `parent: base\nupstream: [${url}]\nsteps:\n  - upload: {from: motd, to: /etc/motd}\n`,
          'mid/motd': files['mid/motd'],
          'app/layer.yaml': files['app/layer.yaml'],
          'app/app.txt': files['app/app.txt'],
        },
        'tinyup',
      );
      const work = mkdtempSync(path.join(tmp, 'mk-'));
      await fakeBusyboxBase(new Store(storeDir('up')), loadLayerSet(dir, 'tinyup'), work);
      rmSync(work, { recursive: true });
      const job = (store: string, layer: string, run: string) =>
        cli(['ci', 'layer', '--set', 'tinyup', '--layer', layer, '--layers-dir', dir, '--store', storeDir(store), '--backend', 'chroot', '--json'], { ...env(), OST_IMAGES_RUN: run });

      for (const layer of ['base', 'mid']) {
        const r = await job('up', layer, '101');
        expect(r.code, r.stderr).toBe(0);
      }
      const record = JSON.parse(readFileSync(runUpstreamFile(staging, 'tinyup', '101'), 'utf8')) as { digests: Record<string, string> };
      expect(record.digests).toEqual({ [url]: createHash('sha256').update('Date: before the push\n').digest('hex') });

      // The mirror is pushed while the run goes on.
      writeFileSync(inRelease, 'Date: after the push\n');
      // A job of another run sees the push: mid's key moved, so its child has no parent to build on.
      const other = await job('up-2', 'app', '102');
      expect(other.code, other.stderr).toBe(1);
      expect(other.stderr).toContain("tinyup app: a layer job builds only its own layer, never a parent");
      // The run's own child job plans with the run's view, finds mid staged and builds on it.
      const r = await job('up-2', 'app', '101');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain("tinyup: planning with run 101's upstream");
      const out = JSON.parse(r.stdout) as LayerJobResult;
      expect(out.layers).toEqual([{ layer: 'base', action: 'fetched' }, { layer: 'mid', action: 'fetched' }, { layer: 'app', action: 'built' }]);
    } finally {
      mirror.stop();
    }
  }, 600_000);
});

describe('a base job on a runner that has no key of the set', () => {
  it("first takes the key the newest published base was made with, so a new base keeps the set's key", async () => {
    const kls = loadLayerSet(writeLayerSet(demoSet({ isDefault: false })).layersDir, 'demo');
    // A base made with the set's key (fakeBuild ships 'private' / 'public' as the pair).
    const id = publicKeyId('public\n');
    const made = new Store(path.join(tmp, 'key-builder'));
    await fakeBuild(made, 'demo', 'base', '20260101000000', undefined, 0x11, computeKeys(kls, undefined, id).get('base'));
    const repo = path.join(tmp, 'key-staging');
    await publish(repo, (await packageLayers(kls, ['base'], made)).map((p) => p.rpm));
    const remote = (await readRepoIndex(repo)).keys;
    const fresh = new Store(path.join(tmp, 'key-runner'));
    // Not for a layer above the base: its job takes the base (and the key) as a parent anyway.
    await adoptPublishedKey(kls, 'upgrade', fresh, remote);
    expect(await readRootKey(kls, fresh)).toBeUndefined();
    await adoptPublishedKey(kls, 'base', fresh, remote);
    const key = (await readRootKey(kls, fresh))!;
    expect(key).toMatchObject({ id, source: 'store' });
    expect(readFileSync(key.private, 'utf8')).toBe('private\n');
  });
});
