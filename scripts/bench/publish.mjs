#!/usr/bin/env node
// Publishing one new layer into a repository that already holds N layer packages: a full
// createrepo_c run over all N+1 packages (no previous metadata) against the incremental path
// (`publish`, which reuses the served snapshot's metadata and index and reads only the new
// package), side by side in one run, as median wall time of --runs.
//   scripts/bench/publish.mjs [--counts 10,50,100] [--mib 16] [--runs 5] [--cache DIR] [--keep-tmp]
//
// The packages are real layer RPMs made by the project's own packaging (packageBuild) from small
// qcow2 chains whose layers each hold --mib MiB of random (incompressible) data, in a synthetic set
// "bench" shaped like the default one: base <- upgrade <- engine-installed / host-installed, with a
// new upgrade, engine and host build per "night", so every prefix of the sequence is closed under
// Requires. Each timed run publishes a fresh engine build on the first upgrade build (so the
// repository grows by one package per run) by calling publish() from dist/ directly, unsigned:
// the CLI would add Node start-up and reading a layer set, neither of which depends on the
// repository. The full createrepo_c baseline runs with the flags the project uses (createrepoArgs)
// over a directory of hard links to the served snapshot's packages plus the new one. Both read warm
// files (the packages were just made). Generated packages go to --cache DIR (kept, and reused by a
// later run with the same --mib) or else into the run's temporary directory, which is removed at the
// end unless --keep-tmp. Needs qemu-img, qemu-io, rpmbuild and createrepo_c; run `npm run build` first.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { arg, cleanup, fmt, median, table, tmpdir, ROOT } from './lib.mjs';

const counts = arg('counts', '10,50,100').split(',').map(Number);
const mib = Number(arg('mib', '16'));
const runs = Number(arg('runs', '5'));
const keepTmp = process.argv.includes('--keep-tmp');
const cacheArg = arg('cache', undefined);
if (counts.some((n) => !Number.isInteger(n) || n < 2) || !(mib > 0) || !(runs > 0)) {
  console.error('usage: scripts/bench/publish.mjs [--counts 10,50,100] [--mib 16] [--runs 5] [--cache DIR] [--keep-tmp] (every count at least 2)');
  process.exit(2);
}

const { loadLayerSet } = await import(path.join(ROOT, 'dist/definitions/load.js'));
const { computeKeys } = await import(path.join(ROOT, 'dist/plan/keys.js'));
const { imageFileName, sshKeyFileName, rpmFileName } = await import(path.join(ROOT, 'dist/definitions/naming.js'));
const { Store } = await import(path.join(ROOT, 'dist/store/store.js'));
const { packageBuild } = await import(path.join(ROOT, 'dist/package/package.js'));
const { DEFAULT_PAYLOAD } = await import(path.join(ROOT, 'dist/package/spec.js'));
const { publish } = await import(path.join(ROOT, 'dist/publish/publish.js'));
const { listSnapshots, readSnapshot, servedStamp, poolDir } = await import(path.join(ROOT, 'dist/repository/snapshot.js'));
const { createrepoArgs } = await import(path.join(ROOT, 'dist/tools/createrepo.js'));
const { configureLog } = await import(path.join(ROOT, 'dist/core/log.js'));

configureLog({ quiet: true });
// publish warns on every unsigned publish; the bench publishes unsigned on purpose.
const stderrWrite = process.stderr.write.bind(process.stderr);
process.stderr.write = (chunk, ...rest) => (/warning: publishing .* unsigned/.test(String(chunk)) ? true : stderrWrite(chunk, ...rest));

const SET = 'bench';
const LAYERS = {
  'set.yaml': 'description: Publish benchmark\ndistro: {family: debian, name: Debian, version: "12", codename: bookworm, mirror: "http://deb.debian.org/debian"}\npackage: {prefix: ost-images, default: true}\n',
  'base/layer.yaml': 'description: Base\nbase:\n  mmdebstrap: {packages: [openssh-server]}\n',
  'upgrade/layer.yaml': 'description: All updates\nparent: base\nsteps:\n  - upgrade: true\n',
  'engine-installed/layer.yaml': 'description: Engine\nparent: upgrade\nsteps:\n  - install: [postgresql]\n',
  'host-installed/layer.yaml': 'description: Host\nparent: upgrade\nsteps:\n  - install: [qemu-system-x86]\n',
};

const tmp = tmpdir('publish');
let failed = false;
try {
  const layersDir = path.join(tmp, 'layers');
  for (const [f, c] of Object.entries(LAYERS)) {
    mkdirSync(path.dirname(path.join(layersDir, SET, f)), { recursive: true });
    writeFileSync(path.join(layersDir, SET, f), c);
  }
  const ls = loadLayerSet(layersDir, SET);
  const keys = computeKeys(ls);
  const store = new Store(path.join(tmp, 'store'));
  store.ensure(SET);
  const cache = path.join(cacheArg ?? path.join(tmp, 'cache'), `rpms-${mib}MiB`);
  mkdirSync(cache, { recursive: true });

  // The build sequence: base, then per night upgrade, engine-installed, host-installed; then the
  // extra engine builds the timed runs publish, all on the first upgrade build.
  const release = (i) => {
    const d = new Date(Date.UTC(2026, 0, 1) + i * 60_000);
    return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  };
  const maxCount = Math.max(...counts);
  const seq = [{ layer: 'base', release: release(0) }];
  let lastUpgrade;
  let firstUpgrade;
  for (let i = 1; seq.length < maxCount; i++) {
    const kind = ['upgrade', 'engine-installed', 'host-installed'][(i - 1) % 3];
    const b = { layer: kind, release: release(i), parent: kind === 'upgrade' ? seq[0] : lastUpgrade };
    if (kind === 'upgrade') lastUpgrade = b;
    firstUpgrade ??= b;
    seq.push(b);
  }
  const extras = [];
  for (let r = 0; r < runs; r++) extras.push({ layer: 'engine-installed', release: release(100_000 + r), parent: firstUpgrade });

  // qcow2 images on demand (a missing parent image is made again: its content does not matter
  // for a child that is already packaged), each layer holding `mib` MiB of random data.
  const virtualSize = Math.max(64, Math.ceil(mib)) * 2 ** 20;
  const randFile = path.join(tmp, 'random.bin');
  function ensureImage(b) {
    if (b.rec) return b.rec;
    const id = { version: '12', release: b.release };
    const image = imageFileName(SET, b.layer, id);
    const full = store.imagePath(SET, image);
    const parent = b.parent ? ensureImage(b.parent) : undefined;
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', ...(parent ? ['-b', parent.image, '-F', 'qcow2'] : []), full, ...(parent ? [] : [String(virtualSize)])]);
    writeFileSync(randFile, randomBytes(Math.round(mib * 2 ** 20)));
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -s ${randFile} 0 ${Math.round(mib * 2 ** 20)}`, full], { stdio: 'ignore' });
    let sshKey;
    if (!parent) {
      const key = sshKeyFileName(SET, b.layer, id);
      writeFileSync(store.imagePath(SET, key), randomBytes(200).toString('base64') + '\n', { mode: 0o600 });
      writeFileSync(store.imagePath(SET, `${key}.pub`), 'ssh-ed25519 AAAA bench\n');
      sshKey = { private: key, public: `${key}.pub` };
    }
    const k = keys.get(b.layer);
    b.rec = {
      schema: 1, set: SET, layer: b.layer, ...id, image, key: k.key, manifest: k.manifest,
      parent: parent ? { layer: parent.layer, version: parent.version, release: parent.release, image: parent.image } : undefined,
      sshKey, backend: 'bench', builtAt: new Date().toISOString(), seconds: 0, virtualSize, allocatedSize: 0,
    };
    store.commit(b.rec);
    return b.rec;
  }

  const all = [...seq, ...extras];
  const t0 = performance.now();
  let made = 0;
  for (const [i, b] of all.entries()) {
    b.rpm = path.join(cache, rpmFileName(ls.set, b.layer, { version: '12', release: b.release }));
    if (!existsSync(b.rpm)) {
      await packageBuild(ls, ensureImage(b), store, ls.set.package.payload ?? DEFAULT_PAYLOAD, cache);
      made++;
    }
    process.stderr.write(`\rpackages: ${i + 1}/${all.length} (${made} made, ${fmt((performance.now() - t0) / 1000)} s)`);
  }
  process.stderr.write('\n');
  // The images are no longer needed: free the space before timing.
  cleanup(store.root);

  const rows = [];
  const results = [];
  const checks = [];
  for (const n of counts) {
    const repo = path.join(tmp, `repo-${n}`);
    process.stderr.write(`repository with ${n} packages: preparing ...`);
    await publish(repo, seq.slice(0, n).map((b) => b.rpm));
    const full = [];
    const incr = [];
    for (const [r, extra] of extras.entries()) {
      process.stderr.write(`\rrepository with ${n} packages: run ${r + 1}/${runs}   `);
      // (b) baseline: the served snapshot's packages plus the new one, no previous metadata.
      const dir = path.join(tmp, `full-${n}-${r}`);
      mkdirSync(dir);
      const served = readSnapshot(repo, servedStamp(repo)).packages;
      for (const p of served) linkSync(path.join(poolDir(repo), p.file), path.join(dir, p.file));
      linkSync(extra.rpm, path.join(dir, path.basename(extra.rpm)));
      let t = performance.now();
      const cr = spawnSync('createrepo_c', createrepoArgs(dir), { encoding: 'utf8' });
      full.push((performance.now() - t) / 1000);
      if (cr.status !== 0 || !existsSync(path.join(dir, 'repodata', 'repomd.xml'))) throw new Error(`createrepo_c failed (${cr.status}): ${cr.stderr}`);
      cleanup(dir);
      // (a) incremental: publish exactly that one new package.
      t = performance.now();
      const res = await publish(repo, [extra.rpm]);
      incr.push((performance.now() - t) / 1000);
      if (!res.changed || res.added.length !== 1 || res.packages !== served.length + 1) throw new Error(`publish into ${repo} did not add exactly one package: ${JSON.stringify(res)}`);
    }
    process.stderr.write('\n');
    const stamp = servedStamp(repo);
    const ok = existsSync(path.join(repo, 'repodata', 'repomd.xml')) && readSnapshot(repo, stamp).packages.length === n + runs && readdirSync(poolDir(repo)).filter((f) => f.endsWith('.rpm')).length === n + runs;
    checks.push(`${n}: ${listSnapshots(repo).length} snapshot(s), serving ${stamp} with ${n + runs} packages, repomd.xml present: ${ok ? 'consistent' : 'INCONSISTENT'}`);
    if (!ok) failed = true;
    const f = median(full);
    const i = median(incr);
    results.push({ n, f, i });
    rows.push([String(n), fmt(f, 2), fmt(i, 2), `${fmt(f / i, 1)}x`]);
    cleanup(repo);
  }

  console.log(`\nPublishing one new layer package (${mib} MiB of incompressible data per layer; median of ${runs}; each run adds one package)\n`);
  console.log(table(['packages in repo', 'full createrepo_c (s)', 'incremental publish (s)', 'ratio full/incremental'], rows));
  console.log(`\nrepositories afterwards:\n${checks.map((c) => `  ${c}`).join('\n')}`);
  const small = results[0];
  const large = results.reduce((a, b) => (b.n > a.n ? b : a));
  const under2 = results.every((r) => r.i < 2);
  // Some growth is expected (hard links, the index and the metadata check are per package), but
  // milliseconds' worth: a ratio near the full run's means every package is being read again.
  const growth = large.i / small.i;
  console.log(`\nincremental publish (unsigned) under 2 s at every size: ${under2 ? 'yes' : 'NO'} (max ${fmt(Math.max(...results.map((r) => r.i)), 2)} s)`);
  console.log(`independence of repository size: incremental at ${large.n} vs ${small.n} packages: ${fmt(growth, 2)}x (full createrepo_c: ${fmt(large.f / small.f, 2)}x; 1.00x: independent)`);
  console.log(`target (under 2 s, and at most 1.5x from ${small.n} to ${large.n} packages): ${under2 && growth <= 1.5 ? 'met' : 'NOT MET'}`);
} catch (err) {
  failed = true;
  process.stderr.write(`\n${err.stack ?? err}\n`);
} finally {
  if (keepTmp) process.stderr.write(`kept ${tmp}\n`);
  else cleanup(tmp);
}
process.exit(failed ? 1 : 0);
