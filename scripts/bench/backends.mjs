#!/usr/bin/env node
// The same layer step with both customization backends, on the same parent build, in one run:
// the chroot backend (guest package manager at native speed) versus virt-customize (guestfs) in an
// appliance VM, which on a host without usable KVM runs under TCG emulation.
//   scripts/bench/backends.mjs [--set debian12] [--layer engine-installed] [--store DIR] [--runs 1]
// Needs the layer's ancestors built in the store; builds go to scratch stores sharing them.
import { arg, cleanup, defaultStore, fmt, median, scratchStore, table, timeCli } from './lib.mjs';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const set = arg('set', 'debian12');
const layer = arg('layer', 'engine-installed');
const store = arg('store', defaultStore());
const runs = Number(arg('runs', '1'));

// Ancestors of the layer, from their build records.
const chain = [];
for (let cur = JSON.parse(readFileSync(path.join(store, set, 'builds', layer, 'current.json'), 'utf8')).parent; cur; ) {
  chain.unshift(cur.layer);
  cur = JSON.parse(readFileSync(path.join(store, set, 'builds', cur.layer, 'current.json'), 'utf8')).parent;
}

const backends = ['chroot', 'guestfs'];
const res = Object.fromEntries(backends.map((b) => [b, { secs: [], sizes: [] }]));
for (let i = 0; i < runs; i++) {
  for (const b of backends) {
    const scratch = scratchStore(store, set, chain);
    process.stderr.write(`run ${i + 1}: ${b} ... `);
    try {
      const t = timeCli(['build', '-q', '--json', '--set', set, '--store', scratch, '--layer', layer, '--backend', b]);
      const built = JSON.parse(t.stdout).layers.find((l) => l.layer === layer);
      res[b].secs.push(built.seconds);
      res[b].sizes.push(built.record.allocatedSize);
      process.stderr.write(`${fmt(built.seconds)} s\n`);
    } finally {
      cleanup(scratch);
    }
  }
}
const kvm = JSON.parse(readFileSync('/run/ost-images/kvm-probe.json', 'utf8').toString() || '{}').usable;
console.log(`\nBuilding layer '${layer}' on ${chain.join(' -> ')} (KVM ${kvm ? 'usable' : 'not usable: guestfs runs under TCG'})\n`);
const g = median(res.guestfs.secs);
console.log(
  table(
    ['backend', 'runs', 'layer build (median)', 'layer allocated', 'speed vs guestfs'],
    backends.map((b) => [b, res[b].secs.length, `${fmt(median(res[b].secs))} s`, `${fmt(median(res[b].sizes) / 2 ** 20, 0)} MiB`, `${fmt(g / median(res[b].secs))}x`]),
  ),
);
console.log(`\ntarget: chroot >= 8x faster than guestfs under TCG: ${fmt(g / median(res.chroot.secs))}x`);
