// `ost-images promote --mirror` and `--keep-used-within` through the real CLI: real packages staged
// in a real staging repository, promoted into production (the ordinary publish: createrepo_c,
// snapshots, the switch), pushed to mirrors by the real rsync, usage read by `ost-images usage`
// from an access log. The gate records are written here with the boot jobs' own writer: what
// promotion reads is the records, and booting for them is ci-promote.test.ts's part (real boots),
// which this file does not repeat.
//
// - a promotion pushes production to its mirrors after it is recorded; a promotion with nothing
//   new still pushes (a new mirror catches up);
// - --keep-used-within (here from OST_IMAGES_KEEP_USED_WITHIN, with OST_IMAGES_KEEP) keeps in
//   production an old build that was downloaded, and removes one that was not, as prune does;
// - a mirror that does not answer: exit 1 naming it, production stays promoted, the next mirror
//   is still pushed (the mirrors from OST_IMAGES_MIRROR here);
// - a refused promotion touches no mirror; bad input is exit 2 with nothing written.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { freePort } from '../../src/consume/guest-ssh.js';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGateRecord } from '../../src/repository/gate.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { packageLayers } from '../../src/package/package.js';
import { computeKeys } from '../../src/plan/keys.js';
import { nvr } from '../../src/plan/retention.js';
import { readHistory } from '../../src/repository/history.js';
import type { PromoteResult } from '../../src/jobs/promote.js';
import { publish } from '../../src/publish/publish.js';
import { readSnapshot, servedStamp } from '../../src/repository/snapshot.js';
import type { BuildRecord } from '../../src/records/build.js';
import { Store } from '../../src/store/store.js';
import { cli } from '../helpers/cli.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { fakeBuild } from '../helpers/tiny.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('promote-mirror');
const staging = path.join(tmp, 'staging');
const production = path.join(tmp, 'production');
const builder = new Store(path.join(tmp, 'builder'));
const m1 = path.join(tmp, 'mirror-1');
const m2 = path.join(tmp, 'mirror-2');
let ls: LayerSet;
let layersDir: string;
const recs: Record<string, BuildRecord> = {};

// Every variable promote reads is set here, so a runner's environment cannot change what is tested.
const env = (extra: Record<string, string> = {}) => ({
  OST_IMAGES_STAGING: '', OST_IMAGES_REPO: '', OST_IMAGES_REPO_URL: '', OST_IMAGES_RUN: '', OST_IMAGES_SIGN_KEY: '',
  OST_IMAGES_KEEP: '', OST_IMAGES_KEEP_USED_WITHIN: '', OST_IMAGES_MIRROR: '', OST_IMAGES_STAGING_KEEP: '', ...extra,
});
const promote = (run: string, extra: string[] = [], extraEnv: Record<string, string> = {}) =>
  cli(['promote', '--set', 'demo', '--layers-dir', layersDir, '--from', staging, '--to', production, '--run', run, '--staging-keep', '3', '--json', ...extra], env(extraEnv));

const n = (r: BuildRecord) => `ost-images-demo-${r.layer}-${r.version}-${r.release}`;
const servedNvrs = (repo: string) => readSnapshot(repo, servedStamp(repo)!).packages.map(nvr).sort();
const page = (dir: string) => readFileSync(path.join(dir, 'index.html'), 'utf8');

async function stage(layers: string[]): Promise<void> {
  await publish(staging, (await packageLayers(ls, layers, builder)).map((p) => p.rpm));
}

/** What the run's boot jobs would have recorded for these chains: passed. */
function passed(run: string, engine: BuildRecord, host: BuildRecord): void {
  for (const top of [engine, host]) {
    writeGateRecord(staging, {
      schema: 1, run, set: 'demo', layer: top.layer, key: top.key!, repo: 'staging', nvrs: [n(recs.base!), n(recs.upgrade!), n(top)],
      ok: true, seconds: 1, sshSeconds: 1, finished: new Date().toISOString(), host: os.hostname(),
    });
  }
}

/** An access-log line (nginx's combined format) of a full download of `file` from production, now. */
function downloadLine(file: string): string {
  const d = new Date();
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()];
  const p2 = (x: number) => String(x).padStart(2, '0');
  const when = `${p2(d.getUTCDate())}/${mon}/${d.getUTCFullYear()}:${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`;
  const bytes = statSync(path.join(production, 'packages', file)).size;
  return `192.0.2.7 - - [${when}] "GET /ost-images/packages/${file} HTTP/1.1" 200 ${bytes} "-" "libdnf (Debian GNU/Linux 12)"\n`;
}

beforeAll(async () => {
  ({ layersDir } = writeLayerSet(demoSet({ isDefault: true })));
  ls = loadLayerSet(layersDir, 'demo');
  const keys = computeKeys(ls);
  recs.base = await fakeBuild(builder, 'demo', 'base', '20260101000000', undefined, 0x11, keys.get('base'));
  recs.upgrade = await fakeBuild(builder, 'demo', 'upgrade', '20260101000100', recs.base, 0x22, keys.get('upgrade'));
  recs.engine1 = await fakeBuild(builder, 'demo', 'engine-installed', '20260101000200', recs.upgrade, 0x33, keys.get('engine-installed'));
  recs.host1 = await fakeBuild(builder, 'demo', 'host-installed', '20260101000300', recs.upgrade, 0x44, keys.get('host-installed'));
  await stage(ls.order);
  passed('r1', recs.engine1, recs.host1);
}, 300_000);

afterAll(() => removeTree(tmp));

describe('promote --mirror', () => {
  it('promotes, records the run, then pushes production to the mirror: it serves the same snapshot and page', async () => {
    const r = await promote('r1', ['--mirror', m1]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as PromoteResult;
    const snapshot = servedStamp(production)!;
    expect(out.published?.snapshot).toBe(snapshot);
    expect(out.mirrors).toEqual([expect.objectContaining({ dest: m1, ok: true, snapshot })]);
    expect(servedStamp(m1)).toBe(snapshot);
    expect(servedNvrs(m1)).toEqual([recs.base, recs.upgrade, recs.engine1, recs.host1].map((x) => n(x!)).sort());
    expect(page(m1)).toBe(page(production));
    const verify = await cli(['mirror', '--repo', production, '--to', m1, '--verify']);
    expect(verify.code, verify.stderr).toBe(0);
  });

  it('nothing new to promote: production is not touched, and a new mirror still catches up', async () => {
    const before = servedStamp(production);
    const r = await promote('r1', ['--mirror', m1, '--mirror', m2]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('nothing new to promote');
    expect(servedStamp(production)).toBe(before);
    const out = JSON.parse(r.stdout) as PromoteResult;
    expect(out.published).toBeNull();
    expect(out.mirrors.map((m) => [m.dest, m.ok, m.snapshot])).toEqual([
      [m1, true, before],
      [m2, true, before],
    ]);
    expect(servedStamp(m2)).toBe(before);
    expect(page(m2)).toBe(page(production));
  });
});

describe('promote --keep-used-within', () => {
  it('keeps in production an old build downloaded within the window, removes one nobody downloaded (OST_IMAGES_KEEP_USED_WITHIN, OST_IMAGES_KEEP)', async () => {
    // engine1 is downloaded from production; host1 is not.
    const log = path.join(tmp, 'access.log');
    writeFileSync(log, downloadLine(`${n(recs.engine1!)}.noarch.rpm`));
    const usage = await cli(['usage', '--repo', production, '--access-log', log]);
    expect(usage.code, usage.stderr).toBe(0);
    recs.engine2 = await fakeBuild(builder, 'demo', 'engine-installed', '20260102000200', recs.upgrade, 0x35, computeKeys(ls).get('engine-installed'));
    recs.host2 = await fakeBuild(builder, 'demo', 'host-installed', '20260102000300', recs.upgrade, 0x45, computeKeys(ls).get('host-installed'));
    await stage(['engine-installed', 'host-installed']);
    passed('r2', recs.engine2, recs.host2);

    const r = await promote('r2', [], { OST_IMAGES_KEEP: '1', OST_IMAGES_KEEP_USED_WITHIN: '7' });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as PromoteResult;
    expect([...out.promoted].sort()).toEqual([n(recs.engine2), n(recs.host2)].sort());
    expect(out.published!.removed).toEqual([`${n(recs.host1!)}.noarch.rpm`]);
    expect(servedNvrs(production)).toEqual([recs.base, recs.upgrade, recs.engine1, recs.engine2, recs.host2].map((x) => n(x!)).sort());
    // No mirror given: none touched.
    expect(out.mirrors).toEqual([]);
    expect(servedStamp(m1)).not.toBe(servedStamp(production));
  });
});

describe('a mirror that fails after the promotion', () => {
  it('exit 1 naming it; production stays promoted and the promotion recorded as passed; the next mirror is still pushed (OST_IMAGES_MIRROR)', async () => {
    recs.engine3 = await fakeBuild(builder, 'demo', 'engine-installed', '20260103000200', recs.upgrade, 0x36, computeKeys(ls).get('engine-installed'));
    await stage(['engine-installed']);
    passed('r3', recs.engine3, recs.host2!);
    // A port that was free a moment ago and that nothing listens on: connecting is refused at once.
    const dead = `rsync://127.0.0.1:${await freePort()}/mirror/ost`;
    const before = servedStamp(production);
    const r = await promote('r3', ['--keep', '2'], { OST_IMAGES_MIRROR: `${dead} ${m1}` });
    expect(r.code, r.stderr).toBe(1);
    const out = JSON.parse(r.stdout) as PromoteResult;
    const snapshot = servedStamp(production)!;
    expect(snapshot).not.toBe(before);
    expect(out.promoted).toEqual([n(recs.engine3)]);
    // Without --keep-used-within this time, the downloaded engine1 goes by count.
    expect(out.published!.removed).toEqual([`${n(recs.engine1!)}.noarch.rpm`]);
    expect(servedNvrs(production)).toContain(n(recs.engine3));
    expect(out.mirrors).toEqual([expect.objectContaining({ dest: dead, ok: false }), expect.objectContaining({ dest: m1, ok: true, snapshot })]);
    expect(out.mirrors[0]!.error).toContain(`mirror ${dead}: cannot list mirror ${dead}`);
    expect(r.stderr).toContain(`error: 1 of 2 mirror(s) failed after the promotion (${dead}); production was promoted and stays so (snapshot ${snapshot})`);
    expect(servedStamp(m1)).toBe(snapshot);
    expect(readHistory(production).runs.at(-1)).toMatchObject({ kind: 'promote', run: 'r3', ok: true, snapshot });
  });
});

describe('no mirror touched, nothing written', () => {
  it('a refused promotion touches no mirror', async () => {
    const fresh = path.join(tmp, 'never-pushed');
    const m1Page = page(m1);
    const r = await promote('r9', ['--mirror', m1, '--mirror', fresh]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('promotion of set demo, run r9, refused');
    expect(existsSync(fresh)).toBe(false);
    // The refusal is in production's history and page; the mirror's page is as it was.
    expect(page(production)).not.toBe(m1Page);
    expect(page(m1)).toBe(m1Page);
  });

  it('bad input: exit 2 naming the option and value, production and mirrors unchanged', async () => {
    const before = servedStamp(production);
    const fresh = path.join(tmp, 'never-written');
    const cases: [string[], Record<string, string>, string][] = [
      [['--keep', '1', '--keep-used-within', 'soon'], {}, "--keep-used-within: 'soon' is not a positive number of days"],
      [[], { OST_IMAGES_KEEP_USED_WITHIN: '0' }, "OST_IMAGES_KEEP_USED_WITHIN: '0' is not a positive number of days"],
      [['--keep-used-within', '7'], {}, '--keep-used-within goes with --keep or OST_IMAGES_KEEP'],
      [['--mirror', 'rsync://host'], {}, "--mirror: 'rsync://host' is not rsync://host[:port]/module[/path]"],
      [['--mirror', path.join(production, 'inside')], {}, `--mirror: '${path.join(production, 'inside')}' is inside the source repository`],
      [[], { OST_IMAGES_MIRROR: `${fresh} ${fresh}/` }, `--mirror: '${fresh}/' is given twice`],
    ];
    for (const [args, extraEnv, message] of cases) {
      const r = await promote('r3', args, extraEnv);
      expect(r.stderr, args.join(' ')).toContain(message);
      expect(r.code, args.join(' ')).toBe(2);
    }
    expect(existsSync(fresh)).toBe(false);
    expect(existsSync(path.join(production, 'inside'))).toBe(false);
    expect(servedStamp(production)).toBe(before);
  });
});
