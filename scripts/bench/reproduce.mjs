#!/usr/bin/env node
// Two builds of a layer set with the reproducibility measures and two without, in one run, each into
// an empty store, all four with one root key; per layer, between the two builds of each toolchain:
// identical and differing files (path, type, mode, owner, content, mtime, link target), the 4 KiB
// guest blocks of the overlays that differ, and the bytes of the qcow2 files that differ; and the
// build times, with their ratio. "Without" is the toolchain at --baseline-ref (default d7f55aa, the
// last commit before reproducible layers), cloned, installed and built here.
//   scripts/bench/reproduce.mjs [--set debian12] [--baseline-ref d7f55aa] [--work DIR] [--keep]
// Needs the network (Debian's mirror; npm for the baseline checkout) and about 12 GB under --work.
// A mirror push between the builds makes them differ for a reason that is not the toolchain's: the
// script then says so (each build's recorded upstream digests are compared).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, arg, cleanup, fmt, table, tmpdir } from './lib.mjs';

const set = arg('set', 'debian12');
const ref = arg('baseline-ref', 'd7f55aa');
const work = arg('work', undefined) ?? tmpdir('reproduce', '/var/tmp');
const keep = process.argv.includes('--keep');
mkdirSync(work, { recursive: true });

const { withScope } = await import(path.join(ROOT, 'dist', 'core', 'scope.js'));
const { mountImageReadOnly } = await import(path.join(ROOT, 'dist', 'builder', 'disk.js'));
const { walkTree } = await import(path.join(ROOT, 'dist', 'reproduce', 'tree.js'));
const { compareTrees } = await import(path.join(ROOT, 'dist', 'reproduce', 'compare.js'));
const { differingBytes, overlayBlockDiff } = await import(path.join(ROOT, 'dist', 'reproduce', 'blocks.js'));

function sh(cmd, args, cwd) {
  execFileSync(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
}

// The baseline toolchain, as it was before the measures.
const baseline = path.join(work, 'baseline');
if (!existsSync(path.join(baseline, 'dist', 'cli.js'))) {
  process.stderr.write(`baseline: cloning ${ROOT} at ${ref} and building it ...\n`);
  cleanup(baseline);
  sh('git', ['clone', '--quiet', ROOT, baseline]);
  sh('git', ['checkout', '--quiet', ref], baseline);
  sh('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], baseline);
  sh('npm', ['run', '--silent', 'build'], baseline);
}

// One root key for every store: the key is an input of the base.
const key = path.join(work, 'root_key');
if (!existsSync(key)) sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `root@${set} (ost-images)`, '-f', key]);

const toolchains = [
  { name: 'with measures', root: ROOT },
  { name: 'without (baseline)', root: baseline },
];
const builds = [];
// Interleaved, so a slow stretch of the machine or the mirror hits both alike.
for (const run of [1, 2]) {
  for (const t of toolchains) {
    const store = path.join(work, `${t === toolchains[0] ? 'new' : 'old'}${run}`);
    cleanup(store);
    mkdirSync(path.join(store, set, 'root-key'), { recursive: true });
    sh('cp', [key, path.join(store, set, 'root-key', 'id_ed25519')]);
    sh('cp', [`${key}.pub`, path.join(store, set, 'root-key', 'id_ed25519.pub')]);
    process.stderr.write(`${t.name}, build ${run} into ${store} ... `);
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [path.join(t.root, 'bin', 'ost-images'), 'build', '-q', '--json', '--set', set, '--layers-dir', path.join(t.root, 'layers'), '--store', store, '--backend', 'chroot'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`build failed (${r.status}):\n${r.stderr.slice(-3000)}`);
    const wall = (Date.now() - t0) / 1000;
    const layers = JSON.parse(r.stdout).layers;
    process.stderr.write(`${fmt(wall)} s\n`);
    builds.push({ toolchain: t.name, run, store, wall, layers });
  }
}

const current = (store, layer) => JSON.parse(readFileSync(path.join(store, set, 'builds', layer, 'current.json'), 'utf8'));
const order = builds[0].layers.map((l) => l.layer);

async function compare(a, b, layer) {
  const ra = current(a.store, layer);
  const rb = current(b.store, layer);
  const ia = path.join(a.store, set, 'images', ra.image);
  const ib = path.join(b.store, set, 'images', rb.image);
  const trees = await withScope(async (scope) => {
    const ta = await walkTree(await mountImageReadOnly(scope, ia, path.join(work, 'mnt-a')));
    const tb = await walkTree(await mountImageReadOnly(scope, ib, path.join(work, 'mnt-b')));
    return compareTrees(ta, tb);
  });
  const moved = JSON.stringify(ra.manifest?.upstream ?? {}) !== JSON.stringify(rb.manifest?.upstream ?? {});
  return {
    layer,
    files: trees.entries,
    identical: trees.identical,
    differing: trees.differing,
    blocks: await overlayBlockDiff(ia, ib, work),
    bytes: differingBytes(ia, ib),
    size: Math.max(ra.allocatedSize, rb.allocatedSize),
    moved,
    seconds: [a, b].map((x) => x.layers.find((l) => l.layer === layer).seconds),
  };
}

const results = {};
for (const t of toolchains) {
  const [a, b] = builds.filter((x) => x.toolchain === t.name);
  results[t.name] = [];
  for (const layer of order) results[t.name].push(await compare(a, b, layer));
}

const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
console.log(`\nReproducibility of set '${set}': two builds per toolchain into empty stores, one root key (${new Date().toISOString()})\n`);
for (const t of toolchains) {
  console.log(`${t.name}:`);
  console.log(
    table(
      ['layer', 'files', 'identical', 'differing', 'differing 4 KiB blocks of the overlay', 'differing bytes of the qcow2', 'build (mean of 2)'],
      results[t.name].map((r) => [
        r.layer + (r.moved ? ' (mirror moved between the builds)' : ''),
        r.files,
        r.identical,
        r.differing.length,
        `${r.blocks.differing} of ${r.blocks.blocks} (${fmt((100 * r.blocks.differing) / Math.max(1, r.blocks.blocks))} %)`,
        `${r.bytes} of ${r.size} (${fmt((100 * r.bytes) / Math.max(1, r.size), 2)} %)`,
        `${fmt(mean(r.seconds))} s`,
      ]),
    ),
  );
  for (const r of results[t.name]) for (const d of r.differing.slice(0, 25)) console.log(`  ${r.layer} ${d.path}: ${d.aspects.join(', ')}`);
  console.log('');
}
const walls = Object.fromEntries(toolchains.map((t) => [t.name, builds.filter((b) => b.toolchain === t.name).map((b) => b.wall)]));
const [w, wo] = [mean(walls[toolchains[0].name]), mean(walls[toolchains[1].name])];
console.log(
  table(
    ['toolchain', 'build 1', 'build 2', 'mean', 'vs baseline'],
    toolchains.map((t) => [t.name, `${fmt(walls[t.name][0])} s`, `${fmt(walls[t.name][1])} s`, `${fmt(mean(walls[t.name]))} s`, `${fmt(mean(walls[t.name]) / wo, 2)}x`]),
  ),
);
console.log(`\ntarget: the measures cost at most 10 %: ${fmt((w / wo - 1) * 100)} %`);
if (!keep) for (const b of builds) cleanup(b.store);
else console.log(`stores kept under ${work}`);
