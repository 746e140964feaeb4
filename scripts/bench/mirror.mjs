#!/usr/bin/env node
// Mirroring a repository into an empty local directory, then again with nothing changed: what the
// first sync costs, and that a second one of an unchanged repository only compares (rsync's quick
// check by size and time; no file sent). Median wall time of --runs, each into a fresh directory.
//   scripts/bench/mirror.mjs --repo DIR [--runs 3] [--checksum]
// --repo is a published repository (e.g. one `ost-images publish` wrote); --checksum times the
// second sync with `mirror --checksum` (every file read at both ends) instead. Run `npm run build`
// first.
import path from 'node:path';
import { arg, cleanup, fmt, median, table, timeCli, tmpdir } from './lib.mjs';

const repo = arg('repo');
if (!repo) {
  process.stderr.write('usage: scripts/bench/mirror.mjs --repo DIR [--runs 3] [--checksum]\n');
  process.exit(2);
}
const runs = Number(arg('runs', '3'));
const checksum = process.argv.includes('--checksum');

const first = [];
const second = [];
let sent;
for (let i = 0; i < runs; i++) {
  const dest = path.join(tmpdir('mirror'), 'mirror');
  try {
    const a = timeCli(['mirror', '-q', '--json', '--repo', repo, '--to', dest]);
    const b = timeCli(['mirror', '-q', '--json', '--repo', repo, '--to', dest, ...(checksum ? ['--checksum'] : [])]);
    const ra = JSON.parse(a.stdout).destinations[0];
    const rb = JSON.parse(b.stdout).destinations[0];
    first.push(a.seconds);
    second.push(b.seconds);
    sent = { firstFiles: ra.files, firstBytes: ra.bytes, secondFiles: rb.files, secondBytes: rb.bytes };
    process.stderr.write(`run ${i + 1}: first ${fmt(a.seconds, 2)} s (${ra.files} files), second ${fmt(b.seconds, 2)} s (${rb.files} files)\n`);
  } finally {
    cleanup(path.dirname(dest));
  }
}
const mib = (b) => fmt(b / 1024 ** 2);
console.log(
  table(
    ['sync', 'median s', 'files sent', 'MiB sent'],
    [
      ['first (empty mirror)', fmt(median(first), 2), sent.firstFiles, mib(sent.firstBytes)],
      [`second (unchanged${checksum ? ', --checksum' : ''})`, fmt(median(second), 2), sent.secondFiles, mib(sent.secondBytes)],
    ],
  ),
);
console.log(`second / first: ${fmt(median(second) / median(first), 2)} (wall time includes Node start-up and taking the lock)`);
