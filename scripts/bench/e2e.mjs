#!/usr/bin/env node
// The default set end to end from nothing, as the quick start runs it: build all layers, package,
// publish, install ost-images-engine-installed into a scratch root, verify the chain, boot it.
// Prints each stage's wall time and share of the total.
//   scripts/bench/e2e.mjs [--set debian12] [--dir DIR]   (a fresh store, repo and root under DIR)
import path from 'node:path';
import { arg, cleanup, fmt, table, timeCli, tmpdir } from './lib.mjs';

const set = arg('set', 'debian12');
const dir = tmpdir('e2e', arg('dir', undefined));
try {
  const t = timeCli(['all', '--json', '--set', set, '--store', path.join(dir, 'store'), '--repo', path.join(dir, 'repo'), '--root', path.join(dir, 'root')], { inherit: true });
  const r = JSON.parse(t.stdout);
  const total = t.seconds;
  const accounted = Object.values(r.stages).reduce((a, b) => a + b, 0);
  const rows = Object.entries(r.stages).map(([k, v]) => [k, `${fmt(v)} s`, `${fmt((v / total) * 100, 0)} %`]);
  rows.push(['other (startup, KVM probe)', `${fmt(total - accounted)} s`, `${fmt(((total - accounted) / total) * 100, 0)} %`]);
  rows.push(['total', `${fmt(total)} s`, '100 %']);
  console.log(`\nThe ${set} set end to end, fresh store (peak RSS of the largest process: ${fmt(t.peakMiB, 0)} MiB)\n`);
  console.log(table(['stage', 'wall', 'share'], rows));
  console.log('\nper layer:');
  console.log(table(['layer', 'build', 'allocated', 'RPM', 'package'], r.built.map((b) => {
    const p = r.packaged.find((x) => x.layer === b.layer);
    return [b.layer, `${fmt(b.seconds)} s`, `${fmt(b.record.allocatedSize / 2 ** 20, 0)} MiB`, `${fmt(p.bytes / 2 ** 20, 0)} MiB`, `${fmt(p.seconds)} s`];
  })));
  console.log(`\ntarget: under 10 minutes: ${fmt(total / 60, 2)} min`);
} finally {
  cleanup(dir);
}
