#!/usr/bin/env node
// A run in which nothing changed: `build` (every layer reused) and `plan`, beside what any run
// costs before it does anything: a bare `node -e ''` and `ost-images --help`, all four in the same
// run and interleaved (one of each per round, so a busy neighbour slows them alike), as medians of
// --runs rounds of wall time and of CPU time (user + system, which a loaded machine inflates less).
// The targets: a no-change build under 1 s wall on an idle machine, and within 0.3 s of --help
// (what the build itself costs once Node and the CLI are up). Then `build` and `plan` on a
// synthetic set whose base image holds 64 MiB and then 4 GiB of data, side by side: keys are
// computed from definitions, so the cost must not grow with image size.
//   scripts/bench/nochange.mjs [--set debian12] [--store DIR] [--runs 5] [--no-synthetic]
// The default set must be built in the store first (uses --offline: no network in the timing).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { arg, cleanup, defaultStore, fmt, median, table, timeCli, timeCommand, tmpdir, ROOT } from './lib.mjs';

const set = arg('set', 'debian12');
const store = arg('store', defaultStore());
const runs = Number(arg('runs', '5'));
const synthetic = !process.argv.includes('--no-synthetic');

const { loadLayerSet } = await import(path.join(ROOT, 'dist/definitions/load.js'));
const { computeKeys } = await import(path.join(ROOT, 'dist/plan/keys.js'));
const { Store } = await import(path.join(ROOT, 'dist/store/store.js'));

function checked(args, t) {
  if (args[0] === 'build' && !JSON.parse(t.stdout).layers.every((l) => l.action === 'reused')) throw new Error('a layer was rebuilt: the store is not up to date');
  return t;
}

function measure(args) {
  const secs = [];
  for (let i = 0; i < runs; i++) secs.push(checked(args, timeCli(args)).seconds);
  return median(secs);
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/**
 * The start-up group: each of `cases` once per round, `runs` rounds; per case the median wall and
 * CPU seconds.
 */
function startup(cases) {
  const wall = cases.map(() => []);
  const cpu = cases.map(() => []);
  for (let i = 0; i < runs; i++) {
    cases.forEach((c, j) => {
      const t = c.cli ? checked(c.cli, timeCli(c.cli)) : timeCommand(c.argv);
      wall[j].push(t.seconds);
      cpu[j].push(t.cpuSeconds);
    });
  }
  return cases.map((c, j) => ({ label: c.label, wall: median(wall[j]), cpu: median(cpu[j]) }));
}

/** A four-layer synthetic set whose base image holds `bytes` of data, recorded under real keys. */
function syntheticStore(dir, bytes) {
  const layers = path.join(dir, 'layers', 'synth');
  const files = {
    'set.yaml': 'distro: {family: debian, name: Debian, version: "12", codename: bookworm, mirror: "http://deb.debian.org/debian"}\npackage: {prefix: ost-images}\n',
    'base/layer.yaml': 'base:\n  mmdebstrap: {packages: [openssh-server]}\n',
    'upgrade/layer.yaml': 'parent: base\nsteps:\n  - upgrade: true\n',
    'engine-installed/layer.yaml': 'parent: upgrade\nsteps:\n  - install: [postgresql]\n',
    'host-installed/layer.yaml': 'parent: upgrade\nsteps:\n  - install: [qemu-system-x86]\n',
  };
  for (const [f, c] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(layers, f)), { recursive: true });
    writeFileSync(path.join(layers, f), c);
  }
  const ls = loadLayerSet(path.join(dir, 'layers'), 'synth');
  const keys = computeKeys(ls);
  const st = new Store(path.join(dir, 'store'));
  st.ensure('synth');
  let parent;
  for (const [i, layer] of ls.order.entries()) {
    const release = `2026010100000${i}`;
    const image = `synth-${layer}-12-${release}.qcow2`;
    const file = st.imagePath('synth', image);
    const p = layer === 'host-installed' ? st.current('synth', 'upgrade') : parent;
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', ...(p ? ['-b', p.image, '-F', 'qcow2'] : []), file, ...(p ? [] : ['8G'])]);
    if (!p) {
      // qemu-io takes at most 2 GiB per request: write in 512 MiB pieces.
      const chunk = 512 * 2 ** 20;
      const cmds = [];
      for (let off = 0; off < bytes; off += chunk) cmds.push('-c', `write -P 0x5a ${off} ${Math.min(chunk, bytes - off)}`);
      execFileSync('qemu-io', ['-f', 'qcow2', ...cmds, file], { stdio: 'ignore' });
    }
    const rec = {
      schema: 1, set: 'synth', layer, version: '12', release, image, key: keys.get(layer).key, manifest: keys.get(layer).manifest,
      parent: p ? { layer: p.layer, version: p.version, release: p.release, image: p.image } : undefined,
      backend: 'bench', builtAt: new Date().toISOString(), seconds: 0, virtualSize: 0, allocatedSize: 0,
    };
    st.commit(rec);
    if (layer !== 'host-installed') parent = rec;
  }
  return { layersDir: path.join(dir, 'layers'), storeDir: path.join(dir, 'store') };
}

const common = ['--set', set, '--store', store, '--offline'];
const loadBefore = loadavg();
const up = startup([
  { label: "node -e ''", argv: [process.execPath, '-e', ''] },
  { label: 'ost-images --help', cli: ['--help'] },
  { label: `ost-images build (${set}, all reused)`, cli: ['build', '-q', '--json', ...common] },
  { label: `ost-images plan (${set})`, cli: ['plan', '-q', '--json', ...common] },
]);
const loadAfter = loadavg();
const [bare, help, build, plan] = up;
console.log(`\nStart-up and a run with nothing to do (median of ${runs} interleaved rounds; load average ${loadBefore} before, ${loadAfter} after)\n`);
console.log(
  table(
    ['command', 'wall', 'CPU (user+sys)', 'wall over --help', 'CPU over --help'],
    up.map((r) => [r.label, `${fmt(r.wall, 2)} s`, `${fmt(r.cpu, 2)} s`, r === bare || r === help ? '' : `${fmt(r.wall - help.wall, 2)} s`, r === bare || r === help ? '' : `${fmt(r.cpu - help.cpu, 2)} s`]),
  ),
);
const verdict = (ok) => (ok ? 'met' : 'NOT met');
console.log(`\ntarget: no-change build of ${set} under 1 s wall (idle machine): ${fmt(build.wall, 2)} s, ${verdict(build.wall < 1)}`);
console.log(`target: within 0.3 s of --help: ${fmt(build.wall - help.wall, 2)} s wall, ${fmt(build.cpu - help.cpu, 2)} s CPU, ${verdict(build.wall - help.wall <= 0.3)}`);
console.log(`(--help over bare node: ${fmt(help.wall - bare.wall, 2)} s wall, ${fmt(help.cpu - bare.cpu, 2)} s CPU; plan over --help: ${fmt(plan.wall - help.wall, 2)} s wall)`);
if (!synthetic) process.exit(0);

const rows = [];
rows.push([`${set} (built store)`, `${fmt(build.wall, 2)} s`, `${fmt(plan.wall, 2)} s`]);
const synth = {};
for (const [label, bytes] of [['64 MiB', 64 * 2 ** 20], ['4 GiB', 4 * 2 ** 30]]) {
  const dir = tmpdir('nochange', path.join(store, 'tmp', '..'));
  try {
    process.stderr.write(`synthetic base with ${label} of data ...\n`);
    const s = syntheticStore(dir, bytes);
    // The image data written above, flushed before the timing: otherwise a build's fsync of its
    // manifest waits behind gigabytes of writeback, and the bigger image looks slower to plan.
    execFileSync('sync');
    const c = ['--set', 'synth', '--layers-dir', s.layersDir, '--store', s.storeDir, '--offline'];
    synth[label] = [measure(['build', '-q', '--json', ...c]), measure(['plan', '-q', '--json', ...c])];
    rows.push([`synthetic, base holding ${label}`, `${fmt(synth[label][0], 2)} s`, `${fmt(synth[label][1], 2)} s`]);
  } finally {
    cleanup(dir);
  }
}
console.log(`\nA run with nothing to do (median of ${runs}, whole command including Node start-up)\n`);
console.log(table(['layer set', 'build (all reused)', 'plan'], rows));
console.log(`\n4 GiB vs 64 MiB base: build ${fmt(synth['4 GiB'][0] / synth['64 MiB'][0], 2)}x, plan ${fmt(synth['4 GiB'][1] / synth['64 MiB'][1], 2)}x (1.00x: independent of image size)`);
