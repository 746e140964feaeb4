// The status page in a real browser: tiny real layer packages (two sets, one with a flattened
// variant and a layer description holding `<script>` and `&`) promoted from staging into a signed
// production repository, served by a loopback HTTP server and read by the system Chromium with
// JavaScript off. The rendered DOM is checked against the repository on disk: every served build,
// each chain base first, sizes equal to the files', every link answering 200, the description as
// text. Then: a second publish switches page and metadata together; a failed nightly and a
// refused promotion appear in the history while the served packages stay as they were; and a
// repository of the older layout (repodata pointing straight at a snapshot) is migrated, also by
// a publisher killed between the two renames and run again.
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGateRecord } from '../../src/repository/gate.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { flattenLayers } from '../../src/builder/flatten.js';
import { packageLayers } from '../../src/package/package.js';
import { FLAT_SUFFIX, flatImageFileName } from '../../src/definitions/naming.js';
import { nvr } from '../../src/plan/retention.js';
import { gateTargets, promote } from '../../src/jobs/promote.js';
import { publish } from '../../src/publish/publish.js';
import { readHistory } from '../../src/repository/history.js';
import { readSnapshot, servedStamp, snapshotDir } from '../../src/repository/snapshot.js';
import { writeUsageRecord } from '../../src/repository/usage.js';
import type { BuildRecord } from '../../src/records/build.js';
import { Store } from '../../src/store/store.js';
import { cli, ROOT } from '../helpers/cli.js';
import { dropTestKey, makeTestKey, type TestKey } from '../helpers/gpg.js';
import { serveDirectory, type Server } from '../helpers/http.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { fakeBuild } from '../helpers/tiny.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('status-page');
const storeDir = path.join(tmp, 'store');
const store = new Store(storeDir);
const staging = path.join(tmp, 'staging');
const repo = path.join(tmp, 'production');
const HOSTILE = '<script>alert(1)</script> & friends';
let ls: LayerSet;
let other: LayerSet;
let layersDir: string;
let key: TestKey;
let server: Server;
let browser: Browser | undefined;
let page: Page;
const savedHome = process.env.GNUPGHOME;

/** The demo set's chain, the base described with markup; engine-installed flattened. */
function sets(): { layersDir: string } {
  const files = demoSet({ isDefault: true, extraSetKeys: 'flatten: [engine-installed]' });
  files['base/layer.yaml'] = `description: "${HOSTILE}"\nbase:\n  mmdebstrap: {packages: [openssh-server]}\n`;
  // An upstream whose digest no store knows yet: a nightly run --offline fails at its first stage.
  files['upgrade/layer.yaml'] = `upstream: ["http://127.0.0.1:9/InRelease"]\n${files['upgrade/layer.yaml']}`;
  const { layersDir: dir } = writeLayerSet(files, 'demo');
  // A second set in the same layers directory: only a base, not the default set.
  const otherFiles = demoSet({ isDefault: false });
  for (const [rel, content] of Object.entries(otherFiles)) {
    if (!rel.startsWith('set.yaml') && !rel.startsWith('base/')) continue;
    mkdirSync(path.dirname(path.join(dir, 'other', rel)), { recursive: true });
    writeFileSync(path.join(dir, 'other', rel), content);
  }
  return { layersDir: dir };
}

/** What the browser shows, read from the DOM (works with page scripts disabled: it is DevTools). */
interface Rendered {
  stamp: string;
  scripts: number;
  builds: { nvr: string; chain: string[]; imageBytes: string; rpmBytes: string; summary: string; diff: string; lastDownloaded: string | null }[];
  hrefs: string[];
  runs: { cls: string; text: string }[];
  graph: Record<string, string[]>;
}

async function render(): Promise<Rendered> {
  await page.goto(server.url, { waitUntil: 'load' });
  return page.evaluate(() => ({
    stamp: document.querySelector('meta[name="ost-images-snapshot"]')!.getAttribute('content')!,
    scripts: document.querySelectorAll('script').length,
    builds: [...document.querySelectorAll('tr.build')].map((tr) => ({
      nvr: tr.getAttribute('data-nvr')!,
      chain: [...tr.querySelectorAll('ol.chain li')].map((li) => li.getAttribute('data-layer')!),
      imageBytes: tr.querySelector('.image-size')!.getAttribute('data-bytes')!,
      rpmBytes: tr.querySelector('.rpm-size')!.getAttribute('data-bytes')!,
      summary: tr.querySelector('.summary')!.textContent!,
      diff: tr.querySelector('details summary')?.textContent ?? '',
      lastDownloaded: tr.querySelector('.last-downloaded')?.textContent ?? null,
    })),
    hrefs: [...document.querySelectorAll('a[href]')].map((a) => (a as HTMLAnchorElement).href),
    runs: [...document.querySelectorAll('tr.run')].map((tr) => ({ cls: tr.className, text: tr.textContent! })),
    graph: Object.fromEntries([...document.querySelectorAll('section.set')].map((s) => [s.getAttribute('data-set')!, [...s.querySelectorAll('g.graph-node')].map((g) => g.getAttribute('data-layer')!)])),
  }));
}

/** A build of the store by set, layer and release. */
const recordOf = (set: string, layer: string, release: string): BuildRecord => store.builds(set, layer).find((b) => b.release === release)!;

/** The chain of a build from the store's records, base first. */
function chainOf(rec: BuildRecord): string[] {
  const out = [rec.layer];
  for (let p = rec.parent; p; p = recordOf(rec.set, p.layer, p.release).parent) out.unshift(p.layer);
  return out;
}

let recs: Record<string, BuildRecord> = {};

beforeAll(async () => {
  ({ layersDir } = sets());
  ls = loadLayerSet(layersDir, 'demo');
  other = loadLayerSet(layersDir, 'other');
  key = makeTestKey();
  process.env.GNUPGHOME = key.home;
  const base = await fakeBuild(store, 'demo', 'base', '20260101000000', undefined, 0x11, undefined, true);
  const upgrade = await fakeBuild(store, 'demo', 'upgrade', '20260101000100', base, 0x22, undefined, true);
  const engine = await fakeBuild(store, 'demo', 'engine-installed', '20260101000200', upgrade, 0x33, undefined, true);
  const host = await fakeBuild(store, 'demo', 'host-installed', '20260101000300', upgrade, 0x44, undefined, true);
  recs = { base, upgrade, engine, host };
  await flattenLayers(ls, store);
  const rpms = (await packageLayers(ls, ls.order, store)).map((p) => p.rpm);
  // Staging, as a pipeline's layer jobs leave it; the gate records its boot jobs would write.
  await publish(staging, rpms, { unsigned: true });
  for (const layer of gateTargets(ls)) {
    const flat = layer.endsWith(FLAT_SUFFIX);
    const top = recs[layer === 'engine-installed' || flat ? 'engine' : 'host']!;
    const nvrs = flat ? [`ost-images-demo-${layer}-12-${top.release}`] : chainOf(top).map((l) => `ost-images-demo-${l}-12-${recs[l === 'engine-installed' ? 'engine' : l === 'host-installed' ? 'host' : l]!.release}`);
    writeGateRecord(staging, { schema: 1, run: 'r1', set: 'demo', layer, key: 'k', repo: 'staging', nvrs, ok: true, seconds: 1, finished: new Date().toISOString(), host: 'test' });
  }
  // Production gets the demo set by promotion (no builder store: facts come from the packages),
  // and the other set by a plain publish.
  const r = await promote(ls, staging, repo, { run: 'r1', signKey: key.email, stagingKeep: 2 });
  expect(r.promoted.length).toBe(5);
  await fakeBuild(store, 'other', 'base', '20260101000500', undefined, 0x55);
  await publish(repo, (await packageLayers(other, ['base'], store)).map((p) => p.rpm), { signKey: key.email });
  server = await serveDirectory(repo);
  browser = await puppeteer.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  // Readable without JavaScript: the page is read with scripts off.
  await page.setJavaScriptEnabled(false);
  // Every render reads the file as served now. With the cache on, Chromium revalidates with
  // If-Modified-Since, and http.server compares whole seconds: a page rewritten in the same second
  // as the one fetched before (a rollback right after a publish) was answered 304, the old page.
  await page.setCacheEnabled(false);
}, 600_000);

afterAll(async () => {
  await browser?.close();
  server?.stop();
  dropTestKey(key);
  if (savedHome === undefined) delete process.env.GNUPGHOME;
  else process.env.GNUPGHOME = savedHome;
  removeTree(tmp);
});

describe('the status page', () => {
  it('shows every served build with its chain base first, sizes equal to the files, links that resolve, data as text', async () => {
    const v = await render();
    const stamp = servedStamp(repo)!;
    expect(v.stamp).toBe(stamp);
    const served = readSnapshot(repo, stamp).packages;
    expect(v.builds.map((b) => b.nvr).sort()).toEqual(served.map(nvr).sort());
    expect(Object.keys(v.graph).sort()).toEqual(['demo', 'other']);
    expect(v.graph.demo).toEqual(['base', 'upgrade', 'engine-installed', 'host-installed']);
    for (const p of served) {
      const b = v.builds.find((x) => x.nvr === nvr(p))!;
      expect(Number(b.rpmBytes), p.file).toBe(statSync(path.join(repo, 'packages', p.file)).size);
      const layer = p.name.replace(/^ost-images-(demo|other)-/, '');
      const set = p.name.startsWith('ost-images-demo-') ? 'demo' : 'other';
      const flat = layer.endsWith(FLAT_SUFFIX);
      const rec = recordOf(set, flat ? layer.slice(0, -FLAT_SUFFIX.length) : layer, p.release);
      const image = flat ? flatImageFileName(set, rec.layer, rec) : rec.image;
      // The image inside the package: the very file the build left in the store.
      expect(Number(b.imageBytes), p.file).toBe(statSync(store.imagePath(set, image)).size);
      expect(b.chain, p.file).toEqual(flat ? [layer] : chainOf(rec));
    }
    const base = v.builds.find((b) => b.nvr === nvr({ name: 'ost-images-demo-base', version: '12', release: recs.base!.release, provides: [], requires: [] }))!;
    // Escaped: the description is text, and the page has no script element at all.
    expect(base.summary).toContain(HOSTILE);
    expect(v.scripts).toBe(0);
    expect(v.builds.find((b) => b.nvr.startsWith('ost-images-demo-engine-installed-12'))!.diff).toBe('1 added; 1 unchanged');
    // Every link answers: the .repo file, the key, each package; anchors name a row on the page.
    const local = v.hrefs.filter((h) => !h.includes('#'));
    expect(local).toContain(`${server.url}ost-images.repo`);
    expect(local).toContain(`${server.url}RPM-GPG-KEY-ost-images`);
    expect(local.filter((h) => h.includes('/packages/')).length).toBe(served.length);
    for (const h of local) expect((await fetch(h)).status, h).toBe(200);
    for (const h of v.hrefs.filter((x) => x.includes('#'))) expect(await page.$(`[id="${h.split('#')[1]}"]`), h).not.toBeNull();
    // The promotion that made the demo set's snapshot is in the history.
    expect(v.runs.map((r) => r.text)).toEqual([expect.stringMatching(/demo\s*promote\s*passed.*run r1/)]);
  });

  it('is switched together with the metadata: a second publish serves the page of the snapshot repomd.xml belongs to', async () => {
    const before = servedStamp(repo)!;
    await fakeBuild(store, 'demo', 'engine-installed', '20260102000000', recs.upgrade, 0x66, undefined, true);
    await flattenLayers(ls, store);
    const [rpm] = await packageLayers(ls, ['engine-installed'], store);
    // Downloads recorded (as `ost-images usage` records them): the next page shows them.
    const baseNvr = `ost-images-demo-base-12-${recs.base!.release}`;
    writeUsageRecord(repo, { schema: 1, builds: { [baseNvr]: { downloads: 3, lastDownloaded: '2026-11-27T10:02:11Z' } }, files: {}, logs: {} });
    const t0 = Date.now();
    const r = await publish(repo, [rpm!.rpm], { signKey: key.email });
    expect(r.added).toEqual([path.basename(rpm!.rpm)]);
    expect(r.packages).toBe(7);
    const after = servedStamp(repo)!;
    expect(after).not.toBe(before);
    const v = await render();
    expect(v.stamp).toBe(after);
    const repomd = Buffer.from(await (await fetch(`${server.url}repodata/repomd.xml`)).arrayBuffer());
    expect(repomd.equals(readFileSync(path.join(snapshotDir(repo, after), 'repodata', 'repomd.xml')))).toBe(true);
    expect(v.builds.map((b) => b.nvr)).toContain('ost-images-demo-engine-installed-12-20260102000000');
    expect(v.builds.find((b) => b.nvr === baseNvr)!.lastDownloaded).toBe('2026-11-27 10:02 UTC (3 download(s))');
    expect(v.builds.find((b) => b.nvr.startsWith('ost-images-demo-host-installed'))!.lastDownloaded).toBe('never seen');
    // The layout: one switch link, two static links through it.
    expect(readlinkSync(path.join(repo, 'current'))).toBe(`.snapshots/${after}`);
    expect(readlinkSync(path.join(repo, 'repodata'))).toBe('current/repodata');
    expect(readlinkSync(path.join(repo, 'index.html'))).toBe('current/index.html');
    // Only the new package was unpacked; the others' facts came with the served snapshot.
    const builds = JSON.parse(readFileSync(path.join(snapshotDir(repo, after), 'builds.json'), 'utf8')) as { builds: Record<string, unknown> };
    expect(Object.keys(builds.builds).sort()).toEqual(readSnapshot(repo, after).packages.map((p) => p.file).sort());
    console.log(`publish of one new package with its page: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  it('a failed nightly and a refused promotion appear in the history; the served packages do not change', async () => {
    const stamp = servedStamp(repo)!;
    const packages = readSnapshot(repo, stamp).packages.map((p) => p.file).sort();
    // Failing cheaply: --offline, and no upstream digest known, fails at the first stage.
    const n = await cli(['nightly', '--set', 'demo', '--layers-dir', layersDir, '--store', path.join(tmp, 'empty-store'), '--repo', repo, '--offline', '--sign-key', key.email, '--report-dir', path.join(tmp, 'reports'), '--json'], { GNUPGHOME: key.home });
    expect(n.code, n.stderr).toBe(1);
    const p = await cli(['promote', '--set', 'demo', '--layers-dir', layersDir, '--from', staging, '--to', repo, '--run', 'r2', '--sign-key', key.email], { GNUPGHOME: key.home });
    expect(p.code, p.stderr).toBe(1);
    expect(servedStamp(repo)).toBe(stamp);
    expect(readSnapshot(repo, stamp).packages.map((x) => x.file).sort()).toEqual(packages);
    const h = readHistory(repo).runs;
    expect(h.map((r) => [r.kind, r.ok, r.failedStage])).toEqual([
      ['promote', true, undefined],
      ['nightly', false, 'upstream'],
      ['promote', false, 'gate'],
    ]);
    const v = await render();
    expect(v.stamp).toBe(stamp);
    expect(v.runs.map((r) => [r.cls, r.text])).toEqual([
      ['run run-failed', expect.stringMatching(/demo\s*promote\s*refused.*run r2; .*host-installed: missing/)],
      ['run run-failed', expect.stringMatching(/demo\s*nightly\s*FAILED at upstream.*no digest is known/)],
      ['run run-passed', expect.stringMatching(/promote\s*passed/)],
    ]);
    expect(await page.$$eval('svg.chart g.run-bar.failed', (g) => g.length)).toBe(2);
    const shot = process.env.OST_IMAGES_SCREENSHOT === '1' ? path.join(ROOT, 'docs', 'status-page.png') : path.join(tmp, 'status-page.png');
    mkdirSync(path.dirname(shot), { recursive: true });
    await page.screenshot({ path: shot as `${string}.png`, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);
  });

  it('a repository of the older layout is served as it was, and migrated by the next publish, also when killed between the renames; a rollback serves its own page', async () => {
    // The older layout: repodata points straight at the served snapshot, no `current`, no page.
    const stamp = servedStamp(repo)!;
    const legacy = () => {
      rmSync(path.join(repo, 'current'));
      rmSync(path.join(repo, 'index.html'));
      rmSync(path.join(snapshotDir(repo, stamp), 'index.html'));
      const tmpLink = path.join(repo, '.legacy');
      symlinkSync(`.snapshots/${stamp}/repodata`, tmpLink);
      renameSync(tmpLink, path.join(repo, 'repodata'));
    };
    legacy();
    expect(servedStamp(repo)).toBe(stamp);
    expect((await fetch(`${server.url}repodata/repomd.xml`)).status).toBe(200);
    // Nothing new to publish still migrates: same snapshot, now through `current`, with a page.
    const args = ['publish', '--set', 'other', '--layers-dir', layersDir, '--store', storeDir, '--repo', repo, '--sign-key', key.email];
    const r = await cli(args, { GNUPGHOME: key.home });
    expect(r.code, r.stderr).toBe(0);
    expect(servedStamp(repo)).toBe(stamp);
    expect(readlinkSync(path.join(repo, 'repodata'))).toBe('current/repodata');
    expect((await render()).stamp).toBe(stamp);
    // Killed after `current` moved, before `repodata` did: still the older layout, still serving
    // the same snapshot; run again, it completes.
    legacy();
    await fakeBuild(store, 'other', 'base', '20260103000000', undefined, 0x57);
    await packageLayers(other, ['base'], store);
    const killed = await cli(args, { GNUPGHOME: key.home, OST_IMAGES_FAULT: 'publish:migrate-repodata' });
    // Killed by the hook at that point, and nothing else: any other failure would prove nothing.
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    expect(killed.stderr).toMatch(/^test hook: OST_IMAGES_FAULT=publish:migrate-repodata: reached$/m);
    expect(readlinkSync(path.join(repo, 'repodata'))).toBe(`.snapshots/${stamp}/repodata`);
    expect(servedStamp(repo)).toBe(stamp);
    expect(lstatSync(path.join(repo, 'current')).isSymbolicLink()).toBe(true);
    const again = await cli(args, { GNUPGHOME: key.home });
    expect(again.code, again.stderr).toBe(0);
    const now = servedStamp(repo)!;
    expect(now).not.toBe(stamp);
    expect(readlinkSync(path.join(repo, 'repodata'))).toBe('current/repodata');
    expect(existsSync(path.join(repo, 'index.html'))).toBe(true);
    const v = await render();
    expect(v.stamp).toBe(now);
    expect(v.builds.map((b) => b.nvr)).toContain('ost-images-other-base-12-20260103000000');
    // A rollback serves the older snapshot's own page again, with the history as it is now.
    const back = await cli(['publish', '--rollback', '--repo', repo], { GNUPGHOME: key.home });
    expect(back.code, back.stderr).toBe(0);
    expect(servedStamp(repo)).toBe(stamp);
    const rolled = await render();
    expect(rolled.stamp).toBe(stamp);
    expect(rolled.builds.map((b) => b.nvr)).not.toContain('ost-images-other-base-12-20260103000000');
    expect(rolled.runs.length).toBe(3);
  });
});
