#!/usr/bin/env node
// The nightly of several sets three ways, in one run, each from empty stores and repositories:
//
//   sequential   `ost-images nightly` of each set, one after the other, on one machine (the baseline)
//   pipeline c1  the pipeline `ost-images ci gitlab` generates, run by gitlab-ci-local with one job
//                at a time: one job per layer, each on its own store, layers through staging
//   pipeline c2  the same with two jobs at a time (this machine has two cores)
//
// and what enough runners would take: the critical path of the job DAG, from the jobs' own times
// in the c2 run (every job's overheads included), and from the per-layer build and boot times the
// baseline's reports and manifests record (the work alone). Wall times are shown with their ratio
// to the baseline, measured in the same run (machines here are noisy: compare ratios, not seconds).
//
//   scripts/bench/pipeline.mjs [--sets debian12,debian13] [--concurrency 1,2] [--dir DIR]
//
// Needs what the tests need (scripts/install-deps --test: git, rsync, gitlab-ci-local). Downloads
// every set's packages from its mirror once per variant; a run of both Debian sets takes about an
// hour on a 2-core machine without KVM.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { BIN, ROOT, arg, cleanup, fmt, table, timeCli, tmpdir } from './lib.mjs';

const sets = arg('sets', 'debian12,debian13').split(',');
const concurrencies = arg('concurrency', '1,2').split(',').map(Number);
const base = tmpdir('pipeline', arg('dir', undefined));
const GLCL = path.join(ROOT, 'node_modules', '.bin', 'gitlab-ci-local');
const say = (m) => process.stderr.write(`[bench] ${m}\n`);

/** The baseline: `ost-images nightly` of each set in sequence, into one repository. */
function sequential() {
  const dir = path.join(base, 'sequential');
  // Outside the scratch directory: a failed boot's console log outlives the run.
  const reportDir = tmpdir('pipeline-reports');
  say(`sequential: reports and console logs in ${reportDir}`);
  const t0 = performance.now();
  const reports = [];
  for (const set of sets) {
    say(`sequential: nightly of ${set}`);
    const t = timeCli(['nightly', '--set', set, '--store', path.join(dir, 'store'), '--repo', path.join(dir, 'repo'), '--report-dir', reportDir, '--json']);
    const r = JSON.parse(t.stdout);
    if (!r.ok) throw new Error(`the nightly of ${set} failed: ${JSON.stringify(r.failed)}`);
    reports.push(r);
  }
  const seconds = (performance.now() - t0) / 1000;
  const manifests = reports.map((r) => JSON.parse(readFileSync(r.manifest, 'utf8')));
  cleanup(dir);
  return { seconds, reports, manifests };
}

const git = (cwd, ...args) => execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@ost-images.invalid', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

/** Job durations as gitlab-ci-local reports them ("<job>   finished in 2.1 min"). */
function jobSeconds(text) {
  const unit = { ms: 0.001, s: 1, min: 60, m: 60, h: 3600 };
  const out = new Map();
  for (const line of text.split('\n')) {
    const m = /^(.+?) +finished in ([0-9.]+) ?(ms|s|min|m|h)\b/.exec(line);
    if (m && !line.startsWith('pipeline finished')) out.set(m[1].trim(), Number(m[2]) * unit[m[3]]);
  }
  return out;
}

/** The generated pipeline, run by gitlab-ci-local with `concurrency` jobs at a time. */
function pipeline(concurrency) {
  const dir = path.join(base, `pipeline-c${concurrency}`);
  const checkout = path.join(dir, 'checkout');
  mkdirSync(checkout, { recursive: true });
  git(checkout, 'init', '-q', '-b', 'main');
  for (const set of sets) cpSync(path.join(ROOT, 'layers', set), path.join(checkout, 'layers', set), { recursive: true });
  writeFileSync(path.join(checkout, 'ci.yaml'), [`cli: ${BIN}`, "setup: ''", `staging: {dir: ${path.join(dir, 'staging')}}`, `repo: {dir: ${path.join(dir, 'repo')}}`, ''].join('\n'));
  execFileSync(process.execPath, [BIN, 'ci', 'gitlab', '--config', 'ci.yaml', '--layers-dir', 'layers', '--out', '.gitlab-ci.yml'], { cwd: checkout, stdio: 'ignore' });
  git(checkout, 'add', 'layers', 'ci.yaml', '.gitlab-ci.yml');
  git(checkout, 'commit', '-q', '-m', 'the sets and their pipeline');
  const graph = parse(readFileSync(path.join(checkout, '.gitlab-ci.yml'), 'utf8'));
  say(`pipeline, ${concurrency} job(s) at a time`);
  const t0 = performance.now();
  const r = spawnSync(GLCL, ['--shell-isolation', '--no-artifacts-to-source', '--concurrency', String(concurrency), '--variable', 'XDG_CACHE_HOME=$CI_PROJECT_DIR/.runner'], {
    cwd: checkout,
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
  });
  const seconds = (performance.now() - t0) / 1000;
  const text = `${r.stdout}${r.stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
  if (r.status !== 0) throw new Error(`the pipeline (concurrency ${concurrency}) failed (${r.status}):\n${text.slice(-4000)}`);
  // Only the pipeline's own jobs (gitlab-ci-local also times its own 'parsing and downloads').
  const jobs = new Map([...jobSeconds(text)].filter(([job]) => job in graph));
  cleanup(dir);
  return { seconds, jobs, graph };
}

/** The longest path through the jobs' `needs:`, each job weighing its own time. */
function jobCriticalPath(graph, jobs) {
  const memo = new Map();
  const finish = (job) => {
    if (memo.has(job)) return memo.get(job);
    const needs = (graph[job]?.needs ?? []).map((n) => (typeof n === 'string' ? n : n.job));
    const before = needs.reduce((best, n) => {
      const f = finish(n);
      return f.t > best.t ? f : best;
    }, { t: 0, path: [] });
    const r = { t: before.t + (jobs.get(job) ?? 0), path: [...before.path, job] };
    memo.set(job, r);
    return r;
  };
  return [...jobs.keys()].map(finish).reduce((a, b) => (b.t > a.t ? b : a), { t: 0, path: [] });
}

/**
 * The work alone along the longest chain: each layer's build time from the manifests, plus the
 * boot of the top layer (or flattened variant) from the nightly's report; no job overheads.
 */
function manifestCriticalPath(reports, manifests) {
  let best = { t: 0, what: '' };
  for (const [i, report] of reports.entries()) {
    const layers = new Map(manifests[i].layers.map((l) => [l.layer, l]));
    const chainSeconds = (layer) => {
      let t = 0;
      for (let l = layers.get(layer); l; l = l.parent ? layers.get(l.parent.layer) : undefined) t += l.buildSeconds;
      return t;
    };
    for (const boot of report.boots) {
      const top = boot.layer.replace(/-flat$/, '');
      const t = chainSeconds(top) + boot.seconds + (boot.sshSeconds ?? 0);
      if (t > best.t) best = { t, what: `${report.set} ${boot.layer}` };
    }
  }
  return best;
}

try {
  const seq = sequential();
  const runs = concurrencies.map((c) => ({ c, ...pipeline(c) }));
  const widest = runs.reduce((a, b) => (b.c > a.c ? b : a));
  const byJobs = jobCriticalPath(widest.graph, widest.jobs);
  const byManifests = manifestCriticalPath(seq.reports, seq.manifests);
  const ratio = (s) => `${fmt(s / seq.seconds, 2)}x`;
  console.log(`\nThe nightly of ${sets.join(' and ')}, each way from empty stores, in one run\n`);
  console.log(
    table(['how', 'wall', 'vs sequential nightly'], [
      ['sequential `ost-images nightly` per set (baseline)', `${fmt(seq.seconds)} s`, '1.00x'],
      ...runs.map((r) => [`generated pipeline, gitlab-ci-local, ${r.c} job(s) at a time (${r.jobs.size} jobs)`, `${fmt(r.seconds)} s`, ratio(r.seconds)]),
      [`critical path of the jobs (c${widest.c} job times): ${byJobs.path.join(' -> ')}`, `${fmt(byJobs.t)} s`, ratio(byJobs.t)],
      [`critical path of the work (manifests' build times + boot): ${byManifests.what}`, `${fmt(byManifests.t)} s`, ratio(byManifests.t)],
    ]),
  );
  console.log('\nper job (pipeline, widest run):');
  console.log(table(['job', 'seconds'], [...widest.jobs].sort((a, b) => b[1] - a[1]).map(([j, s]) => [j, fmt(s)])));
} finally {
  cleanup(base);
}
