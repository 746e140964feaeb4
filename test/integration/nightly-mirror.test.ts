// `ost-images nightly --mirror` through the real CLI on a tiny set whose base is a guest that
// really boots and answers SSH (test/helpers/tiny-vm.ts), its layer built with the chroot backend,
// so the nightly passes and publishes; the mirrors are local directories pushed by the real rsync:
//
// - a passing nightly publishes, then pushes the repository to every mirror: each serves the
//   snapshot production serves (mirror --verify finds no difference, dnf installs the chain from a
//   mirror) with the page that shows this very run;
// - a mirror that cannot be written (a read-only file system: root cannot write it either) fails
//   the run at stage 'mirror' with exit 1, naming it, while production stays published and the
//   next mirror is still pushed (here a new one, on a night with nothing new: it catches up);
// - bad mirror destinations are exit 2 before anything is built, every one named;
// - a nightly that fails before publishing touches no mirror.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installInto } from '../../src/consume/install.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { NightlyReport } from '../../src/jobs/nightly.js';
import { computeKeys } from '../../src/plan/keys.js';
import { nvr } from '../../src/plan/retention.js';
import { readHistory } from '../../src/repository/history.js';
import { readSnapshot, servedStamp } from '../../src/repository/snapshot.js';
import { Store } from '../../src/store/store.js';
import { cli } from '../helpers/cli.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { makeBootableTinyDisk, makeKeyPair, storeBuild } from '../helpers/tiny-vm.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('nightly-mirror');
const storeDir = path.join(tmp, 'store');
const store = new Store(storeDir);
const repo = path.join(tmp, 'repo');
const reports = path.join(tmp, 'reports');
const m1 = path.join(tmp, 'mirror-1');
const m2 = path.join(tmp, 'www', 'deep', 'mirror-2');
const late = path.join(tmp, 'mirror-late');
const readOnly = path.join(tmp, 'read-only-mirror');
let mounted = false;
const env = { OST_IMAGES_KVM: '0', OST_IMAGES_MIRROR: '' };
let setDir: string;
let layersDir: string;

const files = {
  'set.yaml': 'distro: {family: debian, name: Debian, version: "12", codename: bookworm, mirror: "http://deb.debian.org/debian"}\npackage: {prefix: ost-images}\n',
  'base/layer.yaml': 'base:\n  mmdebstrap: {packages: [busybox]}\n',
  'app/layer.yaml': 'parent: base\nsteps:\n  - upload: {from: motd, to: /etc/motd}\n',
  'app/motd': 'day one\n',
};
const nightlyArgs = (...extra: string[]) => ['nightly', '--set', 'tiny', '--layers-dir', layersDir, '--store', storeDir, '--repo', repo, '--backend', 'chroot', '--report-dir', reports, '--json', ...extra];

function lastReport(): { json: NightlyReport; text: string } {
  const names = readdirSync(reports).sort();
  const json = names.filter((n) => n.endsWith('.json')).pop()!;
  return { json: JSON.parse(readFileSync(path.join(reports, json), 'utf8')) as NightlyReport, text: readFileSync(path.join(reports, json.replace(/\.json$/, '.txt')), 'utf8') };
}

const servedNvrs = (dir: string) => readSnapshot(dir, servedStamp(dir)!).packages.map(nvr).sort();
const page = (dir: string) => readFileSync(path.join(dir, 'index.html'), 'utf8');

beforeAll(async () => {
  ({ layersDir, setDir } = writeLayerSet(files, 'tiny'));
  // Yesterday's base: a tiny guest that boots, answers SSH with the set's key, and that the
  // chroot backend can build on, recorded under the base layer's real key (the nightly reuses it).
  const work = path.join(tmp, 'work');
  const pub = makeKeyPair(path.join(work, 'key'));
  await makeBootableTinyDisk(path.join(work, 'tiny.qcow2'), path.join(work, 'mk'), { authorizedKey: pub, hostname: 'tiny', buildable: true });
  await storeBuild(store, 'tiny', 'base', '20260101000000', { from: path.join(work, 'tiny.qcow2'), keyFile: path.join(work, 'key') }, computeKeys(loadLayerSet(layersDir, 'tiny')).get('base'));
  rmSync(work, { recursive: true });
  // A mirror nobody can write, not even root: an empty directory on a read-only file system.
  mkdirSync(readOnly);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', readOnly]);
  mounted = true;
}, 600_000);

afterAll(() => {
  if (mounted) execFileSync('umount', [readOnly]);
  removeTree(tmp);
});

describe('nightly --mirror', () => {
  it('publishes, then pushes the repository to every mirror: each serves the snapshot production serves, with the page of this run', async () => {
    const r = await cli(nightlyArgs('--mirror', m1, '--mirror', m2, '--reproduce', 'app'), env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as NightlyReport;
    // --reproduce: the layer built tonight, built again from its recorded inputs, is the same.
    expect(out.reproduced).toEqual([expect.objectContaining({ layer: 'app', status: 'identical', differing: 0, paths: [] })]);
    expect(out).toEqual(lastReport().json);
    expect(out.ok).toBe(true);
    expect(out.layers.map((l) => `${l.layer}:${l.action}`)).toEqual(['base:reused', 'app:built']);
    const snapshot = servedStamp(repo)!;
    expect(out.published).toMatchObject({ snapshot, changed: true });
    expect(out.mirrors).toEqual([
      expect.objectContaining({ dest: m1, ok: true, snapshot }),
      expect.objectContaining({ dest: m2, ok: true, snapshot }),
    ]);
    expect(out.mirrors[0]!.files).toBeGreaterThan(2);
    expect(Object.keys(out.stages)).toEqual(['upstream', 'plan', 'build', 'package', 'boot', 'reproduce', 'publish', 'mirror']);
    for (const m of [m1, m2]) {
      expect(servedStamp(m)).toBe(snapshot);
      expect(servedNvrs(m)).toEqual(servedNvrs(repo));
      // Pushed after the run was recorded: the mirror's page is the source's, this night included.
      expect(page(m)).toBe(page(repo));
    }
    expect(readHistory(repo).runs.at(-1)).toMatchObject({ kind: 'nightly', ok: true, snapshot, reproduced: [{ layer: 'app', status: 'identical', differing: 0 }] });
    expect(page(repo)).toContain('<td class="reproduced passed">app: identical</td>');
    const verify = await cli(['mirror', '--repo', repo, '--to', m1, '--to', m2, '--verify']);
    expect(verify.code, verify.stderr).toBe(0);
    // A test machine installs the chain from a mirror with dnf, as from production.
    const installed = await installInto(path.join(tmp, 'machine'), m2, ['ost-images-tiny-app']);
    expect([...installed.installed].sort()).toEqual(servedNvrs(repo));
    const text = lastReport().text;
    expect(text).toMatch(/^ost-images nightly, set tiny: PASSED/);
    expect(text).toMatch(/\n  reproduce app 12-[0-9]+: IDENTICAL in [0-9]+ s\n/);
    expect(text).toContain(`\n  mirror ${m1}: serving snapshot ${snapshot}; sent `);
    expect(text).toMatch(/stages: .*publish [0-9.]+ s, mirror [0-9.]+ s\n/);
  }, 900_000);

  it('a mirror that cannot be written: exit 1 naming it, production stays published, the next mirror is still pushed (a new one catches up on a night with nothing new)', async () => {
    const before = servedStamp(repo)!;
    const r = await cli(nightlyArgs('--mirror', readOnly, '--mirror', late), env);
    expect(r.code, r.stderr).toBe(1);
    const out = JSON.parse(r.stdout) as NightlyReport;
    expect(out).toEqual(lastReport().json);
    expect(out.ok).toBe(false);
    expect(out.failed).toMatchObject({ stage: 'mirror', exitCode: 1 });
    expect(out.failed!.error.split('\n')[0]).toBe(`1 of 2 mirror(s) failed (${readOnly}); production was published (snapshot ${before}) and stays published`);
    // Published (nothing new this night), and not undone.
    expect(out.published).toMatchObject({ snapshot: before, changed: false });
    expect(servedStamp(repo)).toBe(before);
    expect(out.mirrors).toEqual([expect.objectContaining({ dest: readOnly, ok: false }), expect.objectContaining({ dest: late, ok: true, snapshot: before })]);
    expect(out.mirrors[0]!.error).toContain(`mirror ${readOnly}: `);
    expect(out.mirrors[0]!.error).toContain('Read-only file system');
    expect(readdirSync(readOnly)).toEqual([]);
    expect(servedStamp(late)).toBe(before);
    expect(page(late)).toBe(page(repo));
    expect(r.stderr).toContain(`mirror ${readOnly}: `);
    // The repository's history records what the repository did: this night published.
    expect(readHistory(repo).runs.at(-1)).toMatchObject({ kind: 'nightly', ok: true, snapshot: before });
    const text = lastReport().text;
    expect(text).toContain('FAILED at mirror');
    expect(text).toContain(`  published: snapshot ${before} of ${repo}`);
    expect(text).toContain(`  mirror ${readOnly}: FAILED: `);
    expect(text).toContain(`  mirror ${late}: serving snapshot ${before}`);
  }, 900_000);

  it('bad mirror destinations: exit 2 before anything is built, every one named, nothing written', async () => {
    const busy = path.join(tmp, 'busy');
    mkdirSync(busy);
    writeFileSync(path.join(busy, 'precious.txt'), 'mine');
    const fresh = path.join(tmp, 'never-written');
    const app = store.current('tiny', 'app')!.release;
    const reportsBefore = readdirSync(reports).length;
    const stamp = servedStamp(repo);
    const cases: [string[], Record<string, string>, string[]][] = [
      [['--mirror', 'rsync://host'], {}, ["--mirror: 'rsync://host' is not rsync://host[:port]/module[/path]"]],
      [['--mirror', path.join(repo, 'inside')], {}, [`--mirror: '${path.join(repo, 'inside')}' is inside the source repository`]],
      [['--mirror', busy], {}, [`--mirror: '${busy}' is neither empty nor a mirror an earlier \`ost-images mirror\` wrote`]],
      [['--mirror', fresh, '--mirror', `${fresh}/`, '--mirror', 'host::m'], {}, [`--mirror: '${fresh}/' is given twice`, "--mirror: 'host::m' uses the host::module form"]],
      [[], { OST_IMAGES_MIRROR: `${fresh} rsync://h:0/m` }, ["--mirror: 'rsync://h:0/m' has port 0, not 1-65535"]],
    ];
    for (const [args, extraEnv, messages] of cases) {
      const r = await cli(nightlyArgs(...args), { ...env, ...extraEnv });
      for (const m of messages) expect(r.stderr, args.join(' ')).toContain(m);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).not.toContain('nightly: upstream');
    }
    expect(existsSync(fresh)).toBe(false);
    expect(existsSync(path.join(repo, 'inside'))).toBe(false);
    expect(readdirSync(busy)).toEqual(['precious.txt']);
    expect(readdirSync(reports)).toHaveLength(reportsBefore);
    expect(store.current('tiny', 'app')!.release).toBe(app);
    expect(servedStamp(repo)).toBe(stamp);
  });

  it('a nightly that fails before publishing touches no mirror', async () => {
    writeFileSync(path.join(setDir, 'app', 'layer.yaml'), 'parent: base\nsteps:\n  - run: fail.sh\n');
    writeFileSync(path.join(setDir, 'app', 'fail.sh'), '#!/bin/sh\necho "the step failed" >&2\nexit 3\n');
    const fresh = path.join(tmp, 'never-pushed');
    const m1Page = page(m1);
    const m1Current = lstatSync(path.join(m1, 'current')).mtimeMs;
    const r = await cli(nightlyArgs('--mirror', m1, '--mirror', fresh), env);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as NightlyReport;
    expect(out.failed).toMatchObject({ stage: 'build' });
    expect(out.published).toBeNull();
    expect(out.mirrors).toEqual([]);
    expect(out.stages.mirror).toBeUndefined();
    expect(existsSync(fresh)).toBe(false);
    // The source's page now shows the failed night; the mirror's was not touched.
    expect(page(repo)).not.toBe(m1Page);
    expect(page(m1)).toBe(m1Page);
    expect(lstatSync(path.join(m1, 'current')).mtimeMs).toBe(m1Current);
    expect(lastReport().text).not.toContain('  mirror ');
  }, 600_000);
});
