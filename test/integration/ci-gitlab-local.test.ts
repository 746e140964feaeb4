// The generated GitLab pipeline run for real, by gitlab-ci-local (shell executor, no Docker), on a
// tiny set (base -> mid -> left, right) committed into a scratch git repository with its ci.yaml
// and the .gitlab-ci.yml the real CLI generates from them. The jobs run this checkout's CLI
// (`cli:` is its bin/ost-images, `setup: ''`) and read the sets from their own checkout (the
// pipeline was generated with --layers-dir layers). Every job gets its own store (its own "runner":
// XDG_CACHE_HOME inside the job's build directory), so layers can only travel through staging.
//
// The base is yesterday's build, already staged (a tiny guest that really boots and answers SSH,
// test/helpers/tiny-vm.ts); the layers above are built by the jobs with the chroot backend. What
// the steps of mid, left and right do is call the test's event server, which notes what staging
// served at that moment; the two leaves meet there at a barrier that releases them only when both
// have arrived, so a pipeline that ran them one after the other fails: the barrier answers the
// waiting leaf with an error when gitlab-ci-local reports the other leaf's job finished (an event),
// and a pipeline that never starts the second leaf hangs until the pipeline's bound ends it (a hang
// is an error, never a verdict). Nothing here reads a wall clock to decide anything.
//
// gitlab-ci-local ignores resource_group and a failed job only makes it skip dependants: the
// failed-boot case therefore also starts the promotion job by hand for that run, and the
// promotion itself must refuse.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GateRecord } from '../../src/records/gate.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import { packageLayers } from '../../src/package/package.js';
import { computeKeys } from '../../src/plan/keys.js';
import { nvr } from '../../src/plan/retention.js';
import { publish } from '../../src/publish/publish.js';
import { readSnapshot, servedStamp } from '../../src/repository/snapshot.js';
import type { BuildRecord } from '../../src/records/build.js';
import { Store } from '../../src/store/store.js';
import { BIN, cli } from '../helpers/cli.js';
import { ScratchRepo, jobOutput, jobSpan } from '../helpers/gitlab-ci-local.js';
import { makeBootableTinyDisk, makeKeyPair, storeBuild } from '../helpers/tiny-vm.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('ci-gitlab-local');
const repo = path.join(tmp, 'repo');
const staging = path.join(tmp, 'staging');
const production = path.join(tmp, 'production');
/** Only bounds a hang of a whole pipeline. */
const PIPELINE_BOUND_MS = 1_800_000;

// --- the event server: what each step saw in staging, and the leaves' barrier ---------------------

interface StepEvent {
  layer: string;
  /** The NVRs staging served when the step ran. */
  staged: string[];
}
const events: StepEvent[] = [];
const waiting = new Map<string, http.ServerResponse>();
const arrived = new Set<string>();
/** Once the pipeline's parallelism is shown, a builder that runs the leaves one by one passes too. */
let barrierOpen = false;
let server: http.Server;
let port: number;

const servedNvrs = (dir: string): string[] => {
  const stamp = existsSync(dir) ? servedStamp(dir) : undefined;
  return stamp ? readSnapshot(dir, stamp).packages.map(nvr).sort() : [];
};

function startEventServer(): Promise<void> {
  server = http.createServer((req, res) => {
    const m = /^\/(step|barrier)\/([a-z]+)$/.exec(req.url ?? '');
    if (!m) return void res.writeHead(404).end();
    const [, kind, layer] = m as unknown as [string, string, string];
    events.push({ layer, staged: servedNvrs(staging) });
    if (kind === 'step') return void res.end('ok\n');
    // The barrier: both leaves must be in their build steps at the same time.
    if (barrierOpen) return void res.end('ok\n');
    arrived.add(layer);
    const other = layer === 'left' ? 'right' : 'left';
    if (arrived.has(other)) {
      waiting.get(other)?.end('ok\n');
      waiting.delete(other);
      return void res.end('ok\n');
    }
    waiting.set(layer, res);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      port = (server.address() as AddressInfo).port;
      resolve();
    }),
  );
}

/**
 * The barrier's other way out, an event rather than a time: gitlab-ci-local reports a leaf's job
 * finished (passed or failed) while the other leaf waits at the barrier, so the finished one will
 * never arrive: the waiting leaf is answered 504 (its job fails, and so does the test, saying why).
 * A pipeline that never starts the second leaf at all hangs, which the pipeline bound ends.
 */
function onPipelineLine(line: string): void {
  for (const [layer, res] of waiting) {
    const other = layer === 'left' ? 'right' : 'left';
    if (arrived.has(other) || !line.startsWith(`tiny ${other}`) || !/^ +finished in /.test(line.slice(`tiny ${other}`.length))) continue;
    waiting.delete(layer);
    res.writeHead(504).end(`${other} finished without reaching its step while ${layer} waited: the leaves did not run in parallel\n`);
  }
}

// --- the scratch repository -------------------------------------------------------------------

const step = (what: string) => `#!/bin/sh\nset -e\nwget -q -O /dev/null http://127.0.0.1:${port}/${what}\n`;
const layerFiles = () => ({
  'tiny/set.yaml': 'distro: {family: debian, name: Debian, version: "12", codename: bookworm, mirror: "http://deb.debian.org/debian"}\npackage: {prefix: ost-images}\n',
  'tiny/base/layer.yaml': 'base:\n  mmdebstrap: {packages: [busybox]}\n',
  'tiny/mid/layer.yaml': 'parent: base\nsteps:\n  - upload: {from: motd, to: /etc/motd}\n  - run: mid.sh\n',
  'tiny/mid/motd': 'the middle layer\n',
  'tiny/mid/mid.sh': step('step/mid'),
  'tiny/left/layer.yaml': 'parent: mid\nsteps:\n  - run: left.sh\n',
  'tiny/left/left.sh': `${step('barrier/left')}echo left > /etc/left\n`,
  'tiny/right/layer.yaml': 'parent: mid\nsteps:\n  - run: right.sh\n',
  'tiny/right/right.sh': `${step('barrier/right')}echo right > /etc/right\n`,
});

const scratch = new ScratchRepo(repo);
const writeRepoFiles = (files: Record<string, string>) => scratch.write(files);
/** The pipeline as the real CLI generates it, as the repository has it now. */
async function generate(): Promise<string> {
  await scratch.generate();
  return readFileSync(path.join(repo, '.gitlab-ci.yml'), 'utf8');
}
const git = (...args: string[]) => scratch.git(...args);
const gitlabCiLocal = (extra: string[] = []) => scratch.run(extra, { boundMs: PIPELINE_BOUND_MS, onLine: onPipelineLine });

// --- the jobs' runners ------------------------------------------------------------------------

/** The store of the job that built `layer` (each job has its own, under its build directory). */
function jobStore(layer: string, builtIn: (s: Store) => boolean): Store {
  const builds = path.join(repo, '.gitlab-ci-local', 'builds');
  const stores = readdirSync(builds)
    .map((d) => new Store(path.join(builds, d, '.runner', 'ost-images')))
    .filter((s) => existsSync(s.root) && builtIn(s));
  expect(stores, `exactly one job store for ${layer}`).toHaveLength(1);
  return stores[0]!;
}
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
/** The sha256 rpm recorded for the image inside a staged package. */
function stagedImageDigest(rec: BuildRecord): string {
  const file = path.join(staging, 'packages', `ost-images-tiny-${rec.layer}-${rec.version}-${rec.release}.noarch.rpm`);
  const out = execFileSync('rpm', ['-qp', '--qf', '[%{FILENAMES} %{FILEDIGESTS}\\n]', file], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const line = out.split('\n').find((l) => l.split(' ')[0]!.endsWith(`/${rec.image}`));
  expect(line, `${rec.image} in ${file}:\n${out}`).toBeDefined();
  return line!.split(' ')[1]!;
}

const LAYER_JOBS = ['tiny base', 'tiny mid', 'tiny left', 'tiny right'];
const BOOT_JOBS = ['tiny left boot', 'tiny right boot'];
let baseNvr: string;
let firstRun: string;
let afterFirst: { production: string; staging: string; events: number };

beforeAll(async () => {
  await startEventServer();
  scratch.init();
  writeRepoFiles(layerFiles());
  writeFileSync(
    path.join(repo, 'ci.yaml'),
    [`cli: ${BIN}`, "setup: ''", `staging: {dir: ${staging}}`, `repo: {dir: ${production}}`, 'keep: 2', ''].join('\n'),
  );
  // Yesterday's base, staged: a tiny guest that boots, answers SSH with the set's key, and that the
  // chroot backend can build on.
  const ls = loadLayerSet(path.join(repo, 'layers'), 'tiny');
  const work = path.join(tmp, 'work');
  const pub = makeKeyPair(path.join(work, 'key'));
  await makeBootableTinyDisk(path.join(work, 'tiny.qcow2'), path.join(work, 'mk'), { authorizedKey: pub, hostname: 'tiny', buildable: true });
  const builder = new Store(path.join(tmp, 'builder'));
  const base = await storeBuild(builder, 'tiny', 'base', '20260101000000', { from: path.join(work, 'tiny.qcow2'), keyFile: path.join(work, 'key') }, computeKeys(ls).get('base'));
  await publish(staging, (await packageLayers(ls, ['base'], builder)).map((p) => p.rpm));
  baseNvr = `ost-images-tiny-base-12-${base.release}`;
  const pipeline = await generate();
  expect(pipeline).toContain('$OST_IMAGES ci layer --set tiny --layer mid --layers-dir layers');
  git('add', 'layers', 'ci.yaml', '.gitlab-ci.yml');
  git('commit', '-q', '-m', 'tiny set, its site settings and the generated pipeline');
}, 600_000);

afterAll(async () => {
  scratch.stopAll();
  for (const res of waiting.values()) res.destroy();
  await new Promise((r) => server?.close(r));
  removeTree(tmp);
});

describe('the generated GitLab pipeline, run by gitlab-ci-local', () => {
  it('runs the jobs in DAG order, the two leaves in parallel, parents through staging byte for byte, and promotes', async () => {
    const run = await gitlabCiLocal();
    expect(run.code, run.text).toBe(0);

    // DAG order, as gitlab-ci-local reported it: each job started after the job it needs finished.
    const span = Object.fromEntries([...LAYER_JOBS, ...BOOT_JOBS, 'tiny promote'].map((j) => [j, jobSpan(run, j)]));
    const after = (child: string, parent: string) => expect(span[child]!.start, `${child} after ${parent}`).toBeGreaterThan(span[parent]!.end);
    after('tiny mid', 'tiny base');
    after('tiny left', 'tiny mid');
    after('tiny right', 'tiny mid');
    after('tiny left boot', 'tiny left');
    after('tiny right boot', 'tiny right');
    for (const j of [...LAYER_JOBS, ...BOOT_JOBS]) after('tiny promote', j);
    // ... and as the steps saw it: each ran when its parent was already in staging.
    const seen = (layer: string) => events.filter((e) => e.layer === layer);
    expect(seen('mid')).toHaveLength(1);
    expect(seen('mid')[0]!.staged).toEqual([baseNvr]);
    for (const leaf of ['left', 'right']) {
      expect(seen(leaf)).toHaveLength(1);
      expect(seen(leaf)[0]!.staged.filter((n) => /-mid-/.test(n))).toHaveLength(1);
    }
    // The leaves in parallel: both were inside their build steps at once (the barrier let them
    // through), which the engine's report shows too: neither finished before the other started.
    expect(span['tiny left']!.start).toBeLessThan(span['tiny right']!.end);
    expect(span['tiny right']!.start).toBeLessThan(span['tiny left']!.end);

    // Each layer job on its own runner: base was staged already, the others fetched their parents.
    expect(jobOutput(run, 'tiny base')).toMatch(new RegExp(`tiny base: key [0-9a-f]{12}… already staged as ${baseNvr}; nothing to do`));
    expect(jobOutput(run, 'tiny mid')).toMatch(/tiny mid: staged ost-images-tiny-mid-12-\S+ \(key [0-9a-f]{12}…\): base fetched, mid built/);
    for (const leaf of ['left', 'right']) expect(jobOutput(run, `tiny ${leaf}`)).toMatch(new RegExp(`tiny ${leaf}: staged \\S+ \\(key [0-9a-f]{12}…\\): base fetched, mid fetched, ${leaf} built`));

    // Byte for byte: the parent each child job worked on is the image its parent's job staged.
    const midStore = jobStore('mid', (s) => s.current('tiny', 'mid') !== undefined && !s.current('tiny', 'left') && !s.current('tiny', 'right'));
    const mid = midStore.current('tiny', 'mid')!;
    const base = midStore.current('tiny', 'base')!;
    expect(sha256(midStore.imagePath('tiny', mid.image))).toBe(stagedImageDigest(mid));
    expect(sha256(midStore.imagePath('tiny', base.image))).toBe(stagedImageDigest(base));
    for (const leaf of ['left', 'right']) {
      const s = jobStore(leaf, (st) => st.current('tiny', leaf) !== undefined);
      expect(s.current('tiny', 'mid')!.release).toBe(mid.release);
      expect(sha256(s.imagePath('tiny', s.current('tiny', 'mid')!.image))).toBe(stagedImageDigest(mid));
      expect(sha256(s.imagePath('tiny', s.current('tiny', 'base')!.image))).toBe(stagedImageDigest(base));
    }

    // Both leaves booted and logged in; the promotion published exactly the staged chains.
    const runs = readdirSync(path.join(staging, 'gate', 'tiny'));
    expect(runs).toHaveLength(1);
    firstRun = runs[0]!;
    for (const leaf of ['left', 'right']) {
      expect(jobOutput(run, `tiny ${leaf} boot`)).toMatch(new RegExp(`tiny ${leaf}: passed: userspace after .* SSH login after`));
      const rec = JSON.parse(readFileSync(path.join(staging, 'gate', 'tiny', firstRun, `${leaf}.json`), 'utf8')) as GateRecord;
      expect(rec).toMatchObject({ ok: true, repo: 'staging', run: firstRun });
    }
    expect(servedNvrs(production)).toEqual(servedNvrs(staging));
    expect(servedNvrs(production).map((n) => n.replace(/-12-\d+$/, '')).sort()).toEqual(['base', 'left', 'mid', 'right'].map((l) => `ost-images-tiny-${l}`));
    afterFirst = { production: servedStamp(production)!, staging: servedStamp(staging)!, events: events.length };
  }, PIPELINE_BOUND_MS);

  it('run again with nothing changed, every job is a no-op and nothing new is promoted', async () => {
    const run = await gitlabCiLocal();
    expect(run.code, run.text).toBe(0);
    for (const j of LAYER_JOBS) expect(jobOutput(run, j)).toMatch(new RegExp(`${j}: key [0-9a-f]{12}… already staged as \\S+; nothing to do`));
    for (const j of BOOT_JOBS) expect(jobOutput(run, j)).toContain(`already booted in run ${firstRun}`);
    expect(jobOutput(run, 'tiny promote')).toContain('nothing new to promote');
    // No build step ran, production and staging serve what they did.
    expect(events).toHaveLength(afterFirst.events);
    expect(servedStamp(production)).toBe(afterFirst.production);
    expect(servedStamp(staging)).toBe(afterFirst.staging);
  }, PIPELINE_BOUND_MS);

  it('`ost-images nightly` of the same inputs yields the same packages: names, layer keys, parents, files', async () => {
    // The single-machine nightly, from the store that made yesterday's base, into a repository of
    // its own. Its builds are its own (new releases), but the packages must be the pipeline's.
    barrierOpen = true;
    const nightlyRepo = path.join(tmp, 'nightly-repo');
    const r = await cli(['nightly', '--set', 'tiny', '--layers-dir', path.join(repo, 'layers'), '--store', path.join(tmp, 'builder'), '--repo', nightlyRepo, '--backend', 'chroot', '--json'], { OST_IMAGES_KVM: '0' });
    expect(r.code, r.stderr).toBe(0);
    const shape = (dir: string) =>
      readSnapshot(dir, servedStamp(dir)!)
        .packages.map((p) => {
          const file = path.join(dir, 'packages', p.file);
          const vr = `${p.version}-${p.release}`;
          const files = execFileSync('rpm', ['-qlp', file], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().split('\n').filter(Boolean).map((f) => f.replaceAll(vr, 'V-R'));
          return {
            name: p.name,
            key: p.provides.find((x) => x.startsWith('ost-images-key(')),
            layer: p.provides.find((x) => x.startsWith('ost-images-layer(') || x.startsWith('ost-images-flat('))?.split(' ')[0],
            requires: p.requires.filter((x) => x.startsWith('ost-images-')).map((x) => x.split(' ')[0]),
            files,
          };
        })
        .sort((a, b) => a.name.localeCompare(b.name));
    const fromNightly = shape(nightlyRepo);
    expect(fromNightly.map((p) => p.name)).toEqual(['base', 'left', 'mid', 'right'].map((l) => `ost-images-tiny-${l}`));
    expect(fromNightly.every((p) => p.key && p.files.length > 0)).toBe(true);
    expect(fromNightly).toEqual(shape(production));
    // The base is the very same build in both; the nightly built the layers above anew.
    expect(servedNvrs(nightlyRepo).filter((n) => n.includes('-base-'))).toEqual([baseNvr]);
  }, PIPELINE_BOUND_MS);

  it('a failing boot job promotes nothing, even when the promotion is started by hand, and says why', async () => {
    // A new right layer whose guest powers off instead of starting sshd: it never reaches a login.
    writeRepoFiles({
      'tiny/right/layer.yaml': 'parent: mid\nsteps:\n  - run: right.sh\n',
      'tiny/right/right.sh': '#!/bin/sh\nset -e\nprintf "#!/bin/sh\\necho no sshd here, powering off\\npoweroff -f\\n" > /etc/init.d/rcS\n',
    });
    await generate();
    git('add', 'layers', '.gitlab-ci.yml');
    git('commit', '-q', '-m', 'right: a guest that does not come up');
    const run = await gitlabCiLocal();
    expect(run.code, run.text).toBe(1);
    expect(jobOutput(run, 'tiny left')).toMatch(/already staged as \S+; nothing to do/);
    expect(jobOutput(run, 'tiny right')).toMatch(/tiny right: staged \S+ \(key [0-9a-f]{12}…\): base fetched, mid fetched, right built/);
    const failed = /tiny right: boot test FAILED for run (\S+) \(/.exec(jobOutput(run, 'tiny right boot'));
    expect(failed, run.text).not.toBeNull();
    const thisRun = failed![1]!;
    expect(jobOutput(run, 'tiny right boot')).toContain('did not reach userspace');
    expect(servedStamp(production)).toBe(afterFirst.production);

    // Not relying on the engine to skip it: the promotion job started by hand for that run refuses.
    const byHand = await gitlabCiLocal(['--variable', `OST_IMAGES_RUN=${thisRun}`, 'tiny promote']);
    expect(byHand.code, byHand.text).toBe(1);
    const out = jobOutput(byHand, 'tiny promote');
    expect(out).toContain(`promotion of set tiny, run ${thisRun}, refused; nothing was promoted, production is unchanged`);
    expect(out).toMatch(/tiny right: FAILED: .*did not reach userspace/);
    expect(servedStamp(production)).toBe(afterFirst.production);
    expect(servedNvrs(production).filter((n) => n.startsWith('ost-images-tiny-right-'))).toHaveLength(1);
  }, PIPELINE_BOUND_MS);
});
