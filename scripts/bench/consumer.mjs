#!/usr/bin/env node
// A test machine's wait, measured: from an empty install root and a repository served over HTTP on
// 127.0.0.1, the time from `dnf install ost-images-engine-installed` to a root SSH login on a fresh
// VM (`ost-images vm create`, libvirt), per stage; then three VMs started together (an engine and
// two hosts, as the system tests run them) against one VM alone, as a ratio. Medians over --runs.
//   scripts/bench/consumer.mjs [--repo repo/] [--set debian12] [--runs 3] [--memory 1024]
// Needs a published repository (scripts/quickstart makes one) and libvirt (started here when it is
// not running, and stopped again). Target: the first login under 60 s under TCG.
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { BIN, ROOT, arg, cleanup, fmt, median, table, tmpdir } from './lib.mjs';

const repo = path.resolve(arg('repo', path.join(ROOT, 'repo')));
const set = arg('set', 'debian12');
const runs = Number(arg('runs', '3'));
const memory = arg('memory', '1024');
if (!existsSync(path.join(repo, 'repodata', 'repomd.xml'))) {
  console.error(`consumer bench: no repository at ${repo} (run scripts/quickstart, or give --repo)`);
  process.exit(2);
}

/** A static file server for the repository on 127.0.0.1 (what a test machine reads). */
function serve(dir) {
  const server = http.createServer((req, res) => {
    const file = path.join(dir, decodeURIComponent(new URL(req.url, 'http://x').pathname));
    if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': statSync(file).size });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() })));
}

/** Runs the CLI asynchronously (several at once); resolves with wall seconds and stdout. */
function cli(args) {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code === 0) resolve({ seconds, stdout: out });
      else reject(new Error(`ost-images ${args.join(' ')} failed (${code}):\n${err.slice(-3000)}`));
    });
  });
}

function libvirtAnswers() {
  return spawnSync('virsh', ['-c', 'qemu:///system', '-q', 'version'], { stdio: 'ignore' }).status === 0;
}

/** Starts virtlogd and libvirtd without systemd when nothing answers; returns what stops them again. */
async function ensureLibvirt(dir) {
  if (libvirtAnswers()) return () => undefined;
  const pids = [];
  for (const d of ['virtlogd', 'libvirtd']) {
    const pidFile = path.join(dir, `${d}.pid`);
    spawnSync(d, ['--daemon', '--pid-file', pidFile], { stdio: 'inherit' });
    pids.push(pidFile);
  }
  for (let i = 0; i < 600 && !libvirtAnswers(); i++) await new Promise((r) => setTimeout(r, 100));
  return () => {
    for (const f of pids.reverse()) if (existsSync(f)) spawnSync('kill', [readFileSync(f, 'utf8').trim()]);
  };
}

const dir = tmpdir('consumer');
const { url, close } = await serve(repo);
const stopLibvirt = await ensureLibvirt(dir);
const wanted = set === 'debian12' ? 'ost-images-engine-installed' : `ost-images-${set}-engine-installed`;
const one = { install: [], start: [], ssh: [], total: [] };
const three = { wall: [], slowest: [] };
try {
  for (let run = 0; run < runs; run++) {
    const root = path.join(dir, `root-${run}`);
    const vmDir = path.join(dir, `vms-${run}`);
    const vmArgs = ['--set', set, '--images-dir', path.join(root, 'usr/share/ost-images'), '--vm-dir', vmDir, '--memory', memory, '--json'];
    const inst = await cli(['install', '--repo', url, '--root', root, '--json', wanted]);
    const created = await cli(['vm', 'create', `bench-one-${run}`, '--layer', 'engine-installed', ...vmArgs]);
    const vm = JSON.parse(created.stdout);
    one.install.push(inst.seconds);
    one.ssh.push(vm.sshSeconds);
    one.start.push(created.seconds - vm.sshSeconds);
    one.total.push(inst.seconds + created.seconds);
    await cli(['vm', 'rm', `bench-one-${run}`, '--vm-dir', vmDir]);

    // The system tests' shape: an engine and two hosts, started together on one chain.
    await cli(['install', '--repo', url, '--root', root, wanted.replace(/engine-installed$/, 'host-installed')]);
    const t0 = process.hrtime.bigint();
    const all = await Promise.all([
      cli(['vm', 'create', `bench-e-${run}`, '--layer', 'engine-installed', ...vmArgs]),
      cli(['vm', 'create', `bench-h0-${run}`, '--layer', 'host-installed', ...vmArgs]),
      cli(['vm', 'create', `bench-h1-${run}`, '--layer', 'host-installed', ...vmArgs]),
    ]);
    three.wall.push(Number(process.hrtime.bigint() - t0) / 1e9);
    three.slowest.push(Math.max(...all.map((r) => JSON.parse(r.stdout).sshSeconds)));
    for (const n of [`bench-e-${run}`, `bench-h0-${run}`, `bench-h1-${run}`]) await cli(['vm', 'rm', n, '--vm-dir', vmDir]);
    console.error(`run ${run + 1}/${runs}: first login ${fmt(one.total.at(-1))} s, three VMs ${fmt(three.wall.at(-1))} s`);
  }
} finally {
  stopLibvirt();
  close();
  cleanup(dir);
}

const m = (xs) => median(xs);
console.log(`\nFrom an empty install root to root SSH logins, ${set}, repository over HTTP on 127.0.0.1 (medians of ${runs} run(s))\n`);
console.log(table(['stage', 'wall'], [
  [`dnf install ${wanted} (empty root)`, `${fmt(m(one.install))} s`],
  ['vm create: overlay, define, start', `${fmt(m(one.start))} s`],
  ['vm create: boot to SSH login', `${fmt(m(one.ssh))} s`],
  ['first login, total', `${fmt(m(one.total))} s`],
]));
console.log('');
console.log(table(['VMs started together', 'wall until every login', 'ratio to one VM'], [
  ['1 (engine)', `${fmt(m(one.start) + m(one.ssh))} s`, '1.00'],
  ['3 (engine + 2 hosts)', `${fmt(m(three.wall))} s`, fmt(m(three.wall) / (m(one.start) + m(one.ssh)), 2)],
]));
console.log(`\ntarget: first login under 60 s: ${fmt(m(one.total))} s (${m(one.total) < 60 ? 'met' : 'NOT met'})`);
