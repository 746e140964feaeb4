// The nightly gate through the real CLI on a tiny set (a busybox disk as the base, the chroot
// backend for the layer): when a layer fails to build, or a top layer does not boot, nothing is
// published, the exit code says so, the repository keeps serving yesterday's snapshot, and the
// report (JSON and text) says what happened. The passing path runs in the end-to-end test.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { NightlyReport } from '../../src/jobs/nightly.js';
import { readSnapshot, servedStamp } from '../../src/repository/snapshot.js';
import { Store } from '../../src/store/store.js';
import { cli } from '../helpers/cli.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { fakeBusyboxBase } from '../helpers/tiny.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('nightly');
const storeDir = path.join(tmp, 'store');
const store = new Store(storeDir);
const repo = path.join(tmp, 'repo');
const reports = path.join(tmp, 'reports');
const env = { OST_IMAGES_KVM: '0' };
let setDir: string;
let layersDir: string;

const files = {
  'set.yaml': 'distro: {family: debian, name: Debian, version: "12", codename: bookworm, mirror: "http://deb.debian.org/debian"}\npackage: {prefix: ost-images}\nflatten: [app]\n',
  'base/layer.yaml': 'base:\n  mmdebstrap: {packages: [busybox]}\n',
  'app/layer.yaml': 'parent: base\nsteps:\n  - upload: {from: motd, to: /etc/motd}\n',
  'app/motd': 'day one\n',
};
const common = () => ['--set', 'tiny', '--layers-dir', layersDir, '--store', storeDir];
const nightlyArgs = () => ['nightly', ...common(), '--repo', repo, '--offline', '--backend', 'chroot', '--boot-timeout', '10', '--report-dir', reports, '--json'];

function lastReport(): { json: NightlyReport; text: string } {
  const names = readdirSync(reports).sort();
  const json = names.filter((n) => n.endsWith('.json')).pop()!;
  return { json: JSON.parse(readFileSync(path.join(reports, json), 'utf8')) as NightlyReport, text: readFileSync(path.join(reports, json.replace(/\.json$/, '.txt')), 'utf8') };
}

beforeAll(async () => {
  ({ layersDir, setDir } = writeLayerSet(files, 'tiny'));
  const work = mkdtempSync(path.join(tmp, 'mk-'));
  await fakeBusyboxBase(store, loadLayerSet(layersDir, 'tiny'), work);
  rmSync(work, { recursive: true });
  // Yesterday: built, packaged and published by hand.
  for (const args of [['build', '--backend', 'chroot', '--offline'], ['package'], ['publish', '--repo', repo]]) {
    const r = await cli([args[0]!, ...common(), ...args.slice(1)], env);
    expect(r.code, r.stderr).toBe(0);
  }
}, 600_000);

afterAll(() => removeTree(tmp));

describe('the nightly gate', () => {
  it('publishes nothing when a top layer does not boot, exits 1, and reports why', async () => {
    writeFileSync(path.join(setDir, 'app', 'motd'), 'day two\n');
    const before = servedStamp(repo);
    const r = await cli(nightlyArgs(), env);
    expect(r.code, r.stderr).toBe(1);
    expect(servedStamp(repo)).toBe(before);
    const app = store.current('tiny', 'app')!;
    expect(readSnapshot(repo, before!).packages.map((p) => p.release)).not.toContain(app.release);
    expect(readdirSync(path.join(repo, 'packages')).some((f) => f.includes(app.release))).toBe(false);
    const out = JSON.parse(r.stdout) as NightlyReport;
    expect(out).toEqual(lastReport().json);
    expect(out.ok).toBe(false);
    expect(out.failed).toMatchObject({ stage: 'boot', exitCode: 1 });
    expect(out.published).toBeNull();
    expect(out.layers.map((l) => `${l.layer}:${l.action}`)).toEqual(['base:reused', 'app:built']);
    const appReport = out.layers.find((l) => l.layer === 'app')!;
    expect(appReport.changes.join(' ')).toContain('sha256');
    expect(appReport.rpmBytes).toBeGreaterThan(0);
    expect(appReport.imageBytes).toBeGreaterThan(0);
    expect(appReport.flat!.rpm).toBe(`ost-images-tiny-app-flat-${app.version}-${app.release}.noarch.rpm`);
    expect(out.boots).toEqual([
      expect.objectContaining({ layer: 'app', ok: false, error: expect.stringContaining('did not reach userspace') }),
      expect.objectContaining({ layer: 'app-flat', ok: false, error: expect.stringContaining('did not reach userspace') }),
    ]);
    // The failed boot's console log is kept beside the report, and the error names it. (Not what
    // it holds: how far the firmware gets within the 10 s boot timeout depends on the machine's
    // speed; test/integration/cli.test.ts shows a console's content deterministically.)
    expect(existsSync(out.boots[0]!.consoleLog!)).toBe(true);
    expect(path.dirname(out.boots[0]!.consoleLog!)).toBe(reports);
    expect(out.boots[0]!.error).toContain(`Console log kept at ${out.boots[0]!.consoleLog}`);
    const text = lastReport().text;
    expect(text).toContain('FAILED at boot');
    expect(text).toContain('published: nothing (the repository still serves its previous snapshot)');
    expect(text).toMatch(/app +built +12-[0-9]+/);
  }, 600_000); // two boots that end at their 10 s timeout, on top of a build: generous on a busy machine

  it('publishes nothing when a layer fails to build', async () => {
    writeFileSync(path.join(setDir, 'app', 'layer.yaml'), 'parent: base\nsteps:\n  - run: fail.sh\n');
    writeFileSync(path.join(setDir, 'app', 'fail.sh'), '#!/bin/sh\necho "the step failed" >&2\nexit 3\n');
    const before = servedStamp(repo);
    const r = await cli(nightlyArgs(), env);
    expect(r.code).toBe(1);
    expect(servedStamp(repo)).toBe(before);
    const out = JSON.parse(r.stdout) as NightlyReport;
    expect(out.failed).toMatchObject({ stage: 'build' });
    expect(out.failed!.error).toContain('the step failed');
    expect(out.boots).toEqual([]);
    expect(out.published).toBeNull();
  });

  it('bad input is exit code 2 before anything runs', async () => {
    const r = await cli([...nightlyArgs(), '--keep', 'all']);
    expect(r.code).toBe(2);
  });
});
