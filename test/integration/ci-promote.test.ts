// The pipeline's boot jobs and its promotion through the real CLI: chains staged as the layer jobs
// leave them (real packages in a real staging repository), installed with real dnf into a scratch
// root, booted under QEMU as a tiny guest that really boots and answers SSH with the set's key
// (test/helpers/tiny-vm.ts), gate records in staging, and promotion into a production repository
// signed with a throwaway key. A layer that does not boot is a zeroed boot sector: the firmware
// finds nothing to boot, whatever the machine's speed.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GateRecord } from '../../src/records/gate.js';
import type { BootJobResult } from '../../src/jobs/ci.js';
import { flattenLayers } from '../../src/builder/flatten.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { packageLayers } from '../../src/package/package.js';
import { computeKeys } from '../../src/plan/keys.js';
import type { PromoteResult } from '../../src/jobs/promote.js';
import { publish } from '../../src/publish/publish.js';
import { readSnapshot, servedStamp } from '../../src/repository/snapshot.js';
import { nvr } from '../../src/plan/retention.js';
import type { BuildRecord } from '../../src/records/build.js';
import { Store } from '../../src/store/store.js';
import { cli } from '../helpers/cli.js';
import { dropTestKey, makeTestKey, type TestKey } from '../helpers/gpg.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { makeBootableTinyDisk, makeKeyPair, storeBuild } from '../helpers/tiny-vm.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('ci-promote');
const staging = path.join(tmp, 'staging');
const production = path.join(tmp, 'production');
const builder = new Store(path.join(tmp, 'builder'));
const runner = path.join(tmp, 'runner');
let ls: LayerSet;
let layersDir: string;
let setDir: string;
let key: TestKey;
const recs: Record<string, BuildRecord> = {};

const env = () => ({ OST_IMAGES_KVM: '0', OST_IMAGES_STAGING: staging, OST_IMAGES_STAGING_URL: '', OST_IMAGES_REPO: production, OST_IMAGES_REPO_URL: '', GNUPGHOME: key.home });
const boot = (layer: string, run: string, extra: string[] = []) =>
  cli(['ci', 'boot', '--set', 'demo', '--layer', layer, '--layers-dir', layersDir, '--store', runner, '--run', run, '--boot-timeout', '300', '--json', ...extra], env());
const promote = (run: string, extra: string[] = []) =>
  cli(['promote', '--set', 'demo', '--layers-dir', layersDir, '--from', staging, '--to', production, '--run', run, '--keep', '2', '--sign-key', key.fingerprint, '--staging-keep', '1', '--json', ...extra], env());

const servedNvrs = (repo: string) => readSnapshot(repo, servedStamp(repo)!).packages.map(nvr).sort();
const gate = (run: string, layer: string) => JSON.parse(readFileSync(path.join(staging, 'gate', 'demo', run, `${layer}.json`), 'utf8')) as GateRecord;

/** Packages (with the flattened variant of the set's flattened layers) and stages builds, as layer jobs do. */
async function stage(layers: string[]): Promise<void> {
  await flattenLayers(ls, builder, layers);
  await publish(staging, (await packageLayers(ls, layers, builder)).map((p) => p.rpm));
}

beforeAll(async () => {
  key = makeTestKey();
  ({ layersDir, setDir } = writeLayerSet(demoSet({ isDefault: true, extraSetKeys: 'flatten: [engine-installed]' })));
  ls = loadLayerSet(layersDir, 'demo');
  const work = path.join(tmp, 'work');
  const pub = makeKeyPair(path.join(work, 'key'));
  await makeBootableTinyDisk(path.join(work, 'tiny.qcow2'), path.join(work, 'mk'), { authorizedKey: pub, hostname: 'tiny' });
  const keys = computeKeys(ls);
  recs.base = await storeBuild(builder, 'demo', 'base', '20260101000000', { from: path.join(work, 'tiny.qcow2'), keyFile: path.join(work, 'key') }, keys.get('base'));
  recs.upgrade = await storeBuild(builder, 'demo', 'upgrade', '20260101000100', { parent: recs.base, pattern: 0x22 }, keys.get('upgrade'));
  // An engine build of older inputs, staged by an earlier run: trimming removes it.
  const old = await storeBuild(builder, 'demo', 'engine-installed', '20260101000150', { parent: recs.upgrade, pattern: 0x30 }, { key: 'e'.repeat(64), manifest: keys.get('engine-installed')!.manifest });
  await stage(['base', 'upgrade', 'engine-installed']);
  recs.oldEngine = old;
  recs.engine = await storeBuild(builder, 'demo', 'engine-installed', '20260101000200', { parent: recs.upgrade, pattern: 0x33 }, keys.get('engine-installed'));
  recs.host = await storeBuild(builder, 'demo', 'host-installed', '20260101000300', { parent: recs.upgrade, pattern: 0x44 }, keys.get('host-installed'));
  await stage(['engine-installed', 'host-installed']);
}, 600_000);

afterAll(() => {
  dropTestKey(key);
  removeTree(tmp);
});

const n = (layer: string, rec: BuildRecord) => `ost-images-demo-${layer}-12-${rec.release}`;

describe('ci boot', () => {
  it('installs the chain of the layer key from staging with dnf, boots it, logs in, and records the pass', async () => {
    const r = await boot('engine-installed', 'r1');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as BootJobResult;
    expect(out.booted).toBe(true);
    expect(out.record).toMatchObject({ run: 'r1', set: 'demo', layer: 'engine-installed', repo: 'staging', ok: true, key: recs.engine!.key });
    expect(out.record.nvrs).toEqual([n('base', recs.base!), n('upgrade', recs.upgrade!), n('engine-installed', recs.engine!)]);
    expect(out.record.sshSeconds).toBeGreaterThan(0);
    expect(gate('r1', 'engine-installed')).toEqual(out.record);
    // The scratch root is gone; nothing of the boot is left in the runner's store.
    expect(readdirSync(path.join(runner, 'tmp'))).toEqual([]);
  }, 600_000);

  it('boots the flattened variant alone, and the other top layer', async () => {
    const flat = await boot('engine-installed-flat', 'r1');
    expect(flat.code, flat.stderr).toBe(0);
    expect((JSON.parse(flat.stdout) as BootJobResult).record.nvrs).toEqual([n('engine-installed-flat', recs.engine!)]);
    const host = await boot('host-installed', 'r1');
    expect(host.code, host.stderr).toBe(0);
    expect((JSON.parse(host.stdout) as BootJobResult).record.nvrs).toEqual([n('base', recs.base!), n('upgrade', recs.upgrade!), n('host-installed', recs.host!)]);
  }, 600_000);

  it('the same builds in a later run are not booted again: the pass is repeated for that run', async () => {
    for (const layer of ['engine-installed', 'engine-installed-flat', 'host-installed']) {
      const r = await boot(layer, 'r2');
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as BootJobResult;
      expect(out.booted).toBe(false);
      expect(out.record).toMatchObject({ run: 'r2', ok: true, reusedFrom: 'r1', nvrs: gate('r1', layer).nvrs });
      expect(r.stderr).toContain('already booted in run r1');
      expect(r.stderr).not.toContain('test-boot');
    }
  });

  it('bad input exits 2 and records nothing', async () => {
    const cases: [string, string[], string][] = [
      ['a run id that is no name', ['--layer', 'host-installed', '--run', '../x'], "--run: '../x' is not a run id"],
      ['no run id', ['--layer', 'host-installed', '--run', ''], 'give --run or set OST_IMAGES_RUN'],
      ['an unknown layer', ['--layer', 'nosuch', '--run', 'bad'], "set 'demo' has no layer 'nosuch'"],
      ['a flat variant of a layer not flattened', ['--layer', 'host-installed-flat', '--run', 'bad'], "set 'demo' has no layer 'host-installed-flat'"],
      ['a bad timeout', ['--layer', 'host-installed', '--run', 'bad', '--boot-timeout', 'soon'], "--boot-timeout: 'soon' is not a positive whole number"],
    ];
    for (const [what, args, message] of cases) {
      const r = await cli(['ci', 'boot', '--set', 'demo', '--layers-dir', layersDir, '--store', runner, ...args], { ...env(), OST_IMAGES_RUN: '' });
      expect(r.stderr, what).toContain(message);
      expect(r.code, what).toBe(2);
    }
    expect(existsSync(path.join(staging, 'gate', 'demo', 'bad'))).toBe(false);
  });
});

describe('promote', () => {
  it('publishes into production exactly the builds the run passed, signed, and trims staging', async () => {
    expect(existsSync(production)).toBe(false);
    const r = await promote('r1');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as PromoteResult;
    const passed = [n('base', recs.base!), n('upgrade', recs.upgrade!), n('engine-installed', recs.engine!), n('engine-installed-flat', recs.engine!), n('host-installed', recs.host!)].sort();
    expect([...out.promoted].sort()).toEqual(passed);
    expect(servedNvrs(production)).toEqual(passed);
    // Re-signed on the way: staging's packages are unsigned, production's all carry the key.
    const snap = readSnapshot(production, servedStamp(production)!);
    expect(snap.signedBy).toBe(key.fingerprint);
    expect(snap.packages.every((p) => p.signedBy === key.fingerprint)).toBe(true);
    const sig = execFileSync('rpm', ['-qp', '--qf', '%{RSAHEADER:pgpsig}\\n', path.join(production, 'packages', `${n('engine-installed', recs.engine!)}.noarch.rpm`)], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    expect(sig.toLowerCase()).toContain(key.fingerprint.slice(-16).toLowerCase());
    // The older engine build went from staging; what was promoted stays there.
    expect([...out.trimmed!.packages].sort()).toEqual([`${n('engine-installed', recs.oldEngine!)}.noarch.rpm`, `${n('engine-installed-flat', recs.oldEngine!)}.noarch.rpm`]);
    expect(servedNvrs(staging)).toEqual(passed);
  }, 300_000);

  it('promoting again is a no-op: nothing new, production unchanged; old gate records are trimmed', async () => {
    const before = servedStamp(production);
    const again = await promote('r1');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('nothing new to promote');
    expect(servedStamp(production)).toBe(before);
    // Run r2 passed the same builds: promoting it changes nothing, and keeps only its own records.
    const r2 = await promote('r2');
    expect(r2.code, r2.stderr).toBe(0);
    expect((JSON.parse(r2.stdout) as PromoteResult).promoted).toEqual([]);
    expect(servedStamp(production)).toBe(before);
    expect(readdirSync(path.join(staging, 'gate', 'demo'))).toEqual(['r2']);
  }, 300_000);

  it('a failed boot promotes nothing: exit 1, production unchanged, and the log names the layer and why', async () => {
    // A new host-installed build (new inputs) whose disk does not boot.
    writeFileSync(path.join(setDir, 'host-installed', 'layer.yaml'), 'description: Host\nparent: upgrade\nsteps:\n  - install: [qemu-system-x86, libvirt-daemon]\n');
    ls = loadLayerSet(layersDir, 'demo');
    recs.host2 = await storeBuild(builder, 'demo', 'host-installed', '20260102000000', { parent: recs.upgrade!, pattern: 0x55 }, computeKeys(ls).get('host-installed'));
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -z 0 512', builder.imagePath('demo', recs.host2.image)], { stdio: 'ignore' });
    await stage(['host-installed']);

    const failed = await boot('host-installed', 'r3', ['--boot-timeout', '15']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`demo host-installed: boot test FAILED for run r3 (${n('base', recs.base!)} ${n('upgrade', recs.upgrade!)} ${n('host-installed', recs.host2)})`);
    expect(failed.stderr).toContain('--- last lines of the serial console');
    const rec = gate('r3', 'host-installed');
    expect(rec).toMatchObject({ ok: false, nvrs: [n('base', recs.base!), n('upgrade', recs.upgrade!), n('host-installed', recs.host2)] });
    expect(rec.error).toContain('did not reach userspace');
    expect(rec.consoleTail).toBeDefined();
    for (const layer of ['engine-installed', 'engine-installed-flat']) expect((await boot(layer, 'r3')).code).toBe(0);

    const before = servedStamp(production);
    const r = await promote('r3');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('promotion of set demo, run r3, refused; nothing was promoted, production is unchanged');
    expect(r.stderr).toMatch(/demo host-installed: FAILED: .*did not reach userspace/);
    expect(servedStamp(production)).toBe(before);
    expect(servedNvrs(production)).not.toContain(n('host-installed', recs.host2));
  }, 600_000);

  it('a missing gate record promotes nothing, and names each layer that has none', async () => {
    expect((await boot('engine-installed', 'r4')).code).toBe(0);
    const before = servedStamp(production);
    const r = await promote('r4');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('demo host-installed: missing: no gate record');
    expect(r.stderr).toContain('demo engine-installed-flat: missing: no gate record');
    expect(r.stderr).not.toContain('demo engine-installed: missing');
    expect(servedStamp(production)).toBe(before);
  }, 300_000);

  it("trimming keeps a build newer than the promoted one: another run may be building on it", async () => {
    const r = await promote('r2');
    expect(r.code, r.stderr).toBe(0);
    expect(servedNvrs(staging)).toContain(n('host-installed', recs.host2!));
  }, 300_000);

  it('bad input exits 2 and changes nothing', async () => {
    const before = servedStamp(production);
    const cases: [string[], Record<string, string>, string][] = [
      [['--keep', 'all'], {}, "--keep: 'all' is not a positive whole number"],
      [['--staging-keep', '0'], {}, "--staging-keep: '0' is not a positive whole number"],
      [['--sign-key', 'nobody@example.invalid'], {}, 'nobody@example.invalid'],
      [['--from', path.join(tmp, 'nothing')], {}, 'does not exist'],
    ];
    for (const [args, extra, message] of cases) {
      const r = await promote('r2', args);
      expect(r.stderr).toContain(message);
      expect(r.code).toBe(2);
      void extra;
    }
    const noRun = await cli(['promote', '--set', 'demo', '--layers-dir', layersDir], { ...env(), OST_IMAGES_RUN: '' });
    expect(noRun.stderr).toContain('give --run or set OST_IMAGES_RUN');
    expect(noRun.code).toBe(2);
    expect(servedStamp(production)).toBe(before);
  });
});
