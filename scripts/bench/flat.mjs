#!/usr/bin/env node
// A layer's chain against its flattened variant (the whole chain in one standalone qcow2), in one
// run, on the same guest contents:
//   - reading the whole guest disk, cold (page cache dropped before each run) and warm:
//     `qemu-img convert` into QEMU's null driver reads every allocated cluster through the
//     backing chain, as a VM reading its disk does;
//   - booting to userspace under the machine's accelerator (`ost-images test-boot --no-ssh`).
//   scripts/bench/flat.mjs [--set debian12] [--layer engine-installed] [--store DIR] [--runs 3] [--boots 3]
// Needs the layer built and flattened in the store (the set lists it under `flatten`; run
// `ost-images build` first). Cold reads need root (drop_caches).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { arg, defaultStore, fmt, median, table, timeCli } from './lib.mjs';

const set = arg('set', 'debian12');
const layer = arg('layer', 'engine-installed');
const store = arg('store', defaultStore());
const runs = Number(arg('runs', '3'));
const boots = Number(arg('boots', '3'));

const cur = JSON.parse(readFileSync(path.join(store, set, 'builds', layer, 'current.json'), 'utf8'));
const images = path.join(store, set, 'images');
const variants = {
  chain: path.join(images, cur.image),
  flat: path.join(images, `${layer}-flat-${cur.version}-${cur.release}.qcow2`),
};
if (!existsSync(variants.flat)) {
  console.error(`no flattened image ${variants.flat}: add '${layer}' to 'flatten' in set.yaml and run ost-images build`);
  process.exit(2);
}

function dropCaches() {
  execFileSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

function readAll(image) {
  const size = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', image]).toString())['virtual-size'];
  const t0 = performance.now();
  // The target is QEMU's null block driver: every byte is read through the chain, none written.
  const r = spawnSync('qemu-img', ['convert', '-n', '-f', 'qcow2', '--target-image-opts', image, `driver=null-co,size=${size}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`qemu-img convert ${image}: ${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

const chainInfo = JSON.parse(execFileSync('qemu-img', ['info', '--backing-chain', '--output=json', variants.chain]).toString());
const flatInfo = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', variants.flat]).toString());
const files = { chain: chainInfo.length, flat: 1 };
const bytes = { chain: chainInfo.reduce((s, c) => s + c['actual-size'], 0), flat: flatInfo['actual-size'] };

const res = { chain: { cold: [], warm: [], boot: [] }, flat: { cold: [], warm: [], boot: [] } };
let cold = true;
for (let i = 0; i < runs; i++) {
  for (const v of ['chain', 'flat']) {
    process.stderr.write(`read ${i + 1}/${runs}: ${v} ... `);
    cold = dropCaches() && cold;
    res[v].cold.push(readAll(variants[v]));
    res[v].warm.push(readAll(variants[v]));
    process.stderr.write(`${fmt(res[v].cold.at(-1), 2)} s cold, ${fmt(res[v].warm.at(-1), 2)} s warm\n`);
  }
}
for (let i = 0; i < boots; i++) {
  for (const v of ['chain', 'flat']) {
    process.stderr.write(`boot ${i + 1}/${boots}: ${v} ... `);
    const t = timeCli(['test-boot', '-q', '--json', '--no-ssh', '--store', store, '--image', variants[v]]);
    const r = JSON.parse(t.stdout)[0];
    res[v].boot.push(r.seconds);
    process.stderr.write(`${fmt(r.seconds)} s (${r.accel})\n`);
  }
}

const row = (name, key, digits = 2) => [name, fmt(median(res.chain[key]), digits), fmt(median(res.flat[key]), digits), `${fmt(median(res.chain[key]) / median(res.flat[key]), 2)}x`];
console.log(`\n${layer} ${cur.version}-${cur.release}: chain of ${files.chain} files (${fmt(bytes.chain / 2 ** 20, 0)} MiB) vs one flat file (${fmt(bytes.flat / 2 ** 20, 0)} MiB); medians of ${runs} reads and ${boots} boots\n`);
console.log(
  table(['measure', 'chain (s)', 'flat (s)', 'chain / flat'], [
    row(`read whole disk, cold${cold ? '' : ' (page cache NOT dropped: not root)'}`, 'cold'),
    row('read whole disk, warm', 'warm'),
    row('boot to userspace', 'boot', 1),
  ]),
);
