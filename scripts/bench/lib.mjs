// Shared by the benchmarks: run the CLI under GNU time, medians, a plain table.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, linkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bin', 'ost-images');

/**
 * Runs a program under GNU time; returns wall seconds, CPU seconds (user and system, the
 * process and its children) and the peak RSS (MiB) of its largest process.
 */
export function timeCommand(argv, { env = {}, inherit = false, label = argv.join(' ') } = {}) {
  const r = spawnSync('/usr/bin/time', ['-f', 'BENCH %e %M %U %S', ...argv], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  // GNU time's line is the last of stderr; show the rest when asked to.
  if (inherit) process.stderr.write((r.stderr ?? '').replace(/^BENCH .*$/m, ''));
  if (r.error) throw new Error(`cannot run /usr/bin/time (apt-get install time): ${r.error.message}`);
  const m = /BENCH ([0-9.]+) ([0-9]+) ([0-9.]+) ([0-9.]+)/.exec(r.stderr ?? '');
  if (r.status !== 0) throw new Error(`${label} failed (${r.status}):\n${(r.stderr ?? '').slice(-3000)}`);
  return {
    seconds: m ? Number(m[1]) : NaN,
    peakMiB: m ? Number(m[2]) / 1024 : NaN,
    cpuSeconds: m ? Number(m[3]) + Number(m[4]) : NaN,
    stdout: r.stdout,
  };
}

/** Runs the CLI; returns wall seconds, CPU seconds and the peak RSS (MiB) of its largest process. */
export function timeCli(args, { env = {}, inherit = false } = {}) {
  return timeCommand([process.execPath, BIN, ...args], { env, inherit, label: `ost-images ${args.join(' ')}` });
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function table(header, rows) {
  const all = [header, ...rows].map((r) => r.map(String));
  const w = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => c.padEnd(w[i])).join(' | ')} |`;
  return [line(all[0]), `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`, ...all.slice(1).map(line)].join('\n');
}

export function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

export function defaultStore() {
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'ost-images');
}

export function tmpdir(label, base) {
  return mkdtempSync(path.join(base ?? os.tmpdir(), `ost-bench-${label}-`));
}

/**
 * A scratch store that shares the given layers' current builds with `store` by hard links, so a
 * benchmark can build on top of them without changing the user's store.
 */
export function scratchStore(store, set, layers) {
  const dir = tmpdir('store', path.join(store, 'tmp', '..'));
  mkdirSync(path.join(dir, set, 'images'), { recursive: true });
  for (const layer of layers) {
    const cur = JSON.parse(readFileSync(path.join(store, set, 'builds', layer, 'current.json'), 'utf8'));
    for (const f of readdirSync(path.join(store, set, 'images')).filter((f) => f.startsWith(`${set}-${layer}-${cur.version}-${cur.release}`))) {
      linkSync(path.join(store, set, 'images', f), path.join(dir, set, 'images', f));
    }
    mkdirSync(path.join(dir, set, 'builds', layer), { recursive: true });
    for (const f of ['current.json', `${cur.version}-${cur.release}.json`]) linkSync(path.join(store, set, 'builds', layer, f), path.join(dir, set, 'builds', layer, f));
  }
  return dir;
}

export function cleanup(dir) {
  rmSync(dir, { recursive: true, force: true });
}

export function fmt(x, digits = 1) {
  return Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}
