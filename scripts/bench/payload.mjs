#!/usr/bin/env node
// Packaging one layer with different rpm payload settings, on the same image, side by side in one
// run (runs interleaved so drift of a noisy machine hits every setting alike):
//   default  w6T0L27.zstdio   zstd level 6, all cores, 128 MiB window
//   faster   w4T0L27.zstdio   zstd level 4: the speed end of the trade-off
//   release  w7T0.xzdio       xz -7, all cores: the documented setting for size-critical releases
//   original w9T0.xzdio       what the original Makefile project used: xz -9, multi-threaded
// Prints wall time (median), RPM size and peak memory of each, and ratios against the original.
//   scripts/bench/payload.mjs [--set debian12] [--layer upgrade] [--store DIR] [--runs 3] [--slow-runs 1]
// Needs a built layer in the store (ost-images build).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { arg, cleanup, defaultStore, fmt, median, table, timeCli, tmpdir } from './lib.mjs';

const set = arg('set', 'debian12');
const layer = arg('layer', 'upgrade');
const store = arg('store', defaultStore());
const runs = Number(arg('runs', '3'));
const slowRuns = Number(arg('slow-runs', '1'));

const configs = [
  { name: 'default', payload: 'w6T0L27.zstdio', runs },
  { name: 'faster', payload: 'w4T0L27.zstdio', runs },
  { name: 'release', payload: 'w7T0.xzdio', runs: slowRuns },
  { name: 'original (xz -9 MT)', payload: 'w9T0.xzdio', runs: slowRuns },
];
const results = new Map(configs.map((c) => [c.name, { secs: [], mem: [], bytes: 0 }]));
const imageBytes = (() => {
  const cur = JSON.parse(readFileSync(path.join(store, set, 'builds', layer, 'current.json'), 'utf8'));
  return statSync(path.join(store, set, 'images', cur.image)).size;
})();

for (let round = 0; round < Math.max(...configs.map((c) => c.runs)); round++) {
  for (const c of configs) {
    if (round >= c.runs) continue;
    const out = tmpdir('rpm');
    process.stderr.write(`round ${round + 1}: ${c.name} (${c.payload}) ... `);
    const t = timeCli(['package', '-q', '--set', set, '--store', store, '--layer', layer, '--payload', c.payload, '--out', out]);
    const rpm = readdirSync(out).find((f) => f.endsWith('.rpm'));
    const r = results.get(c.name);
    r.secs.push(t.seconds);
    r.mem.push(t.peakMiB);
    r.bytes = statSync(path.join(out, rpm)).size;
    process.stderr.write(`${fmt(t.seconds)} s\n`);
    cleanup(out);
  }
}

const base = results.get('original (xz -9 MT)');
const baseSec = median(base.secs);
console.log(`\nPackaging layer '${layer}' of set '${set}' (image file ${fmt(imageBytes / 2 ** 20, 0)} MiB) on ${os.cpus().length} cores\n`);
console.log(
  table(
    ['payload', 'setting', 'runs', 'wall (median)', 'RPM size', 'peak RSS', 'speed vs original', 'size vs original'],
    configs.map((c) => {
      const r = results.get(c.name);
      return [c.name, c.payload, r.secs.length, `${fmt(median(r.secs))} s`, `${fmt(r.bytes / 2 ** 20)} MiB`, `${fmt(median(r.mem), 0)} MiB`, `${fmt(baseSec / median(r.secs))}x`, `${fmt(r.bytes / base.bytes, 3)}x`];
    }),
  ),
);
const d = results.get('default');
const rel = results.get('release');
console.log(`\ntargets: default >= 40x faster than original: ${fmt(baseSec / median(d.secs))}x; default size <= 1.2x: ${fmt(d.bytes / base.bytes, 3)}x; release size within 5 %: ${fmt((rel.bytes / base.bytes - 1) * 100)} %`);
