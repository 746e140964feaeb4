// What the mirror tests read of a repository and of its mirrors: the report of `mirror --json`,
// the files a client can see, their checksums, the top-level links the switch changes; and clients
// polling a mirror while a held sync runs (pollDuringHeldSync), for every kind of destination.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import type { MirrorReport } from '../../src/mirror/mirror.js';
import { readSnapshot } from '../../src/repository/snapshot.js';
import { dnfArgs } from '../../src/tools/dnf.js';
import { expect } from 'vitest';
import { ROOT, cli, startCli, type CliResult } from './cli.js';

const execFileP = promisify(execFile);

/** `ost-images mirror --repo REPO ARGS --json`, its report parsed (an error with stderr when there is none). */
export async function mirrorJson(repo: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; report: MirrorReport; stderr: string }> {
  const r = await cli(['mirror', '--repo', repo, ...args, '--json'], env);
  let report: MirrorReport;
  try {
    report = JSON.parse(r.stdout) as MirrorReport;
  } catch {
    throw new Error(`no JSON report (exit ${r.code}):\n${r.stderr}`);
  }
  return { code: r.code, report, stderr: r.stderr };
}

/** The packages a snapshot lists, as `name-version-release.arch.rpm`, sorted. */
export const packagesOf = (repo: string, stamp: string): string[] => readSnapshot(repo, stamp).packages.map((p) => p.file).sort();

export const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Every file under `dir` not hidden anywhere on its path (but .snapshots), relative. */
export function visibleFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(dir, rel))) {
    if (name.startsWith('.') && !(rel === '' && name === '.snapshots')) continue;
    const p = path.join(rel, name);
    const st = lstatSync(path.join(dir, p));
    if (st.isDirectory()) out.push(...visibleFiles(dir, p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

/** Every top-level symlink of a repository with its target: what the switch changes, in either layout. */
export function topLinks(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) if (lstatSync(path.join(dir, name)).isSymbolicLink()) out[name] = readlinkSync(path.join(dir, name));
  return out;
}

export interface HeldSyncResult {
  /** Each dnf poll's snapshot, in the order the polls completed. */
  polls: string[];
  /** At each hold point, the snapshot the poll started there saw. */
  seenAt: [string, string][];
  failures: string[];
  fetchErrors: string[];
  fetchSnapshots: string[];
}

/**
 * A client polling a mirror while `ost-images mirror ARGS` syncs it, held at every phase boundary
 * (OST_IMAGES_MIRROR_HOLD): dnf's own metadata loading from an empty cache in a loop, and a second
 * client fetching packages and checking every checksum (poll-repo.mjs). At each hold, the mirror
 * goes on only once a dnf poll *started there* has completed (an event, counted, not a delay), so
 * every phase boundary is read at least once. `lists` maps each snapshot's package list (names
 * joined by spaces, sorted) to its stamp. The mirror must exit 0; the caller asserts on the result.
 */
export async function pollDuringHeldSync(o: { tmp: string; url: string; args: string[]; env?: Record<string, string>; lists: Map<string, string> }): Promise<HeldSyncResult & { run: CliResult }> {
  type Poll = { started: number; snapshot: string };
  const polls: Poll[] = [];
  const failures: string[] = [];
  let events = 0;
  const wakers = new Set<() => void>();
  const wake = () => wakers.forEach((w) => w());
  let stop = false;
  const root = mkdtempSync(path.join(o.tmp, 'dnf-root-'));
  const loop = (async () => {
    while (!stop) {
      const started = events;
      const cache = mkdtempSync(path.join(o.tmp, 'dnf-cache-'));
      try {
        const { stdout } = await execFileP('dnf', dnfArgs({ root, repoUrl: o.url, cacheDir: cache }, ['-q', 'repoquery', '--qf', '%{name}-%{version}-%{release}.%{arch}.rpm']), { maxBuffer: 1 << 24 });
        const list = stdout.split('\n').filter(Boolean).sort().join(' ');
        const snapshot = o.lists.get(list);
        if (snapshot) polls.push({ started, snapshot });
        else failures.push(`a poll saw neither snapshot's packages: ${list}`);
      } catch (err) {
        failures.push(`dnf failed: ${(err as Error).message}`);
      } finally {
        rmSync(cache, { recursive: true, force: true });
      }
      wake();
    }
  })();
  const fetcher = spawn(process.execPath, [path.join(ROOT, 'test', 'helpers', 'poll-repo.mjs'), o.url], { stdio: ['pipe', 'pipe', 'pipe'] });
  const fetcherLines: string[] = [];
  createInterface({ input: fetcher.stdout! }).on('line', (l) => {
    fetcherLines.push(l);
    wake();
  });
  const fetcherDone = new Promise<void>((resolve) => fetcher.on('close', () => resolve()));
  /** A dnf poll that started after `mark` has completed; its snapshot. */
  const pollAfter = (mark: number) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const p = polls.find((x) => x.started >= mark);
        if (failures.length > 0) reject(new Error(failures.join('\n')));
        else if (fetcherLines.some((l) => l.startsWith('error '))) reject(new Error(fetcherLines.join('\n')));
        else if (p) resolve(p.snapshot);
        else return;
        wakers.delete(check);
      };
      wakers.add(check);
      check();
    });
  const seenAt: [string, string][] = [];
  let run: CliResult;
  try {
    const m = startCli(o.args, { ...o.env, OST_IMAGES_MIRROR_HOLD: '1' });
    for (const point of ['data', 'metadata', 'switch', 'delete', 'end']) {
      await m.until(new RegExp(`mirror-hold ${point} `));
      events++;
      seenAt.push([point, await pollAfter(events)]);
      m.child.kill('SIGUSR2');
    }
    run = await m.done;
  } finally {
    stop = true;
    await loop;
    fetcher.stdin!.end('stop\n');
    await fetcherDone;
    rmSync(root, { recursive: true, force: true });
  }
  const result = JSON.parse(fetcherLines.find((l) => l.startsWith('result '))?.slice('result '.length) ?? '{"errors":["no result"],"snapshots":[]}') as { errors: string[]; snapshots: string[] };
  return { run, polls: polls.map((p) => p.snapshot), seenAt, failures, fetchErrors: result.errors, fetchSnapshots: result.snapshots };
}

/** The package lists of two snapshots of `repo`, each mapped to its stamp (pollDuringHeldSync's `lists`). */
export function snapshotLists(repo: string, before: string, after: string): Map<string, string> {
  const lists = new Map([
    [packagesOf(repo, before).join(' '), before],
    [packagesOf(repo, after).join(' '), after],
  ]);
  expect(lists.size, 'the two snapshots list different packages').toBe(2);
  return lists;
}

/**
 * What a held sync from snapshot `before` to `after` must look like to its clients: the mirror
 * exited 0; at every phase boundary a poll started there completed and saw `before` up to the
 * switch and `after` from the delete phase on; no poll saw a mixture and no fetch failed; once a
 * poll saw the new snapshot, none saw the old one again.
 */
export function expectOneSnapshotAtATime(r: HeldSyncResult & { run: CliResult }, before: string, after: string, label: string): void {
  expect(r.run.code, r.run.stderr).toBe(0);
  expect(r.seenAt).toEqual([
    ['data', before],
    ['metadata', before],
    ['switch', before],
    ['delete', after],
    ['end', after],
  ]);
  expect(r.failures).toEqual([]);
  expect(r.fetchErrors).toEqual([]);
  expect(r.fetchSnapshots.length).toBeLessThanOrEqual(2);
  process.stderr.write(`dnf polls during the sync of ${label}: ${r.polls.filter((x) => x === before).length} saw the old snapshot, then ${r.polls.filter((x) => x === after).length} the new one\n`);
  expect(r.polls.indexOf(after)).toBeGreaterThan(0);
  expect(r.polls.slice(r.polls.indexOf(after))).not.toContain(before);
}
