// `ost-images usage`: web-server access logs read into the repository's usage record
// (repository/usage.ts), each request counted once however often a log is read, in time linear in
// the log, interruptible inside a parse.
import { createHash } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../core/errors.js';
import { checkInterrupted } from '../core/interrupt.js';
import { acquireLock } from '../core/lock.js';
import { log } from '../core/log.js';
import { nvr } from '../plan/retention.js';
import { existingDir, existingFile, onUserPath, quotePath } from '../input/paths.js';
import { listSnapshots, readSnapshot, servedStamp } from '../repository/snapshot.js';
import { LOG_LIMITS, LogTooLarge, parseLine, readLogLines, systemLocalTime, type LocalTime, type LogEntry, type LogLimits } from './access-log.js';
import { type BuildUsage, type LogProgress, type UsageRecord, readUsageRecord, writeUsageRecord } from '../repository/usage.js';

/** A pool file known to the repository: its build, and its size when a snapshot still lists it. */
export interface KnownFile {
  nvr: string;
  size?: number;
}

export type Verdict = { use: 'download' | 'partial'; nvr: string; file: string } | { use: 'ignored'; reason: string } | { use: 'malformed'; reason: string };

// What a download of a layer package looks like: its pool path, below any URL prefix (a
// repository served at /ost-images/, a mirror at /mirror/ci/).
const PACKAGE_PATH = /(?:^|\/)packages\/([^/]+\.rpm)$/;

/**
 * What one log entry means for usage. Pure; the table tests go through here. Only GET counts (a
 * HEAD fetches nothing), answered 200 or 206: a 304 revalidates a copy a cache already holds and
 * a 404 fetched nothing.
 */
export function classify(e: LogEntry, known: ReadonlyMap<string, KnownFile>): Verdict {
  if (e.kind === 'malformed') return { use: 'malformed', reason: e.reason };
  if (e.kind === 'note') return { use: 'ignored', reason: 'server message' };
  if (e.method === undefined || e.path === undefined) return { use: 'ignored', reason: 'no request line' };
  const m = PACKAGE_PATH.exec(e.path);
  if (!m) return { use: 'ignored', reason: 'not a package' };
  if (e.method !== 'GET') return { use: 'ignored', reason: `${e.method} request` };
  if (e.status !== 200 && e.status !== 206) return { use: 'ignored', reason: `status ${e.status}` };
  const file = m[1]!;
  const k = known.get(file);
  if (!k) return { use: 'ignored', reason: 'package not of this repository' };
  const cut = e.status === 200 && e.bytes !== undefined && k.size !== undefined && e.bytes < k.size;
  return { use: e.status === 206 || cut ? 'partial' : 'download', nvr: k.nvr, file };
}

/** Adds one use to a build's record; merging is commutative, so logs can be read in any order. */
export function addUse(builds: Record<string, BuildUsage>, nvrKey: string, time: Date, partial: boolean): void {
  const b = builds[nvrKey] ?? { downloads: 0, lastDownloaded: '' };
  if (partial) b.partial = (b.partial ?? 0) + 1;
  else b.downloads += 1;
  const iso = isoSeconds(time);
  if (b.lastDownloaded === '' || iso > b.lastDownloaded) b.lastDownloaded = iso;
  builds[nvrKey] = b;
}

/** ISO 8601 in UTC to the second: logs carry no finer time. */
export const isoSeconds = (d: Date): string => d.toISOString().replace(/\.[0-9]{3}Z$/, 'Z');

/** Every pool file the repository's snapshots list, with its build and size. */
export function knownFiles(repo: string, rec: UsageRecord): Map<string, KnownFile> {
  const known = new Map<string, KnownFile>();
  for (const [file, n] of Object.entries(rec.files)) known.set(file, { nvr: n });
  for (const stamp of listSnapshots(repo)) for (const p of readSnapshot(repo, stamp).packages) known.set(p.file, { nvr: nvr(p), size: p.size });
  return known;
}

export interface LogResult {
  file: string;
  /** sha256 of its first lines; undefined while the log has no complete line. */
  identity?: string;
  /** Complete lines in the file now. */
  lines: number;
  /** Of those, read by an earlier run (or earlier in this one): not counted again. */
  alreadyRead: number;
  /** The new lines: downloads, partial downloads, ignored (with why), malformed. */
  downloads: number;
  partial: number;
  ignored: number;
  ignoredBy: Record<string, number>;
  malformed: number;
  /** The first few malformed lines, as "file:line: reason". */
  malformedExamples: string[];
  /** A compressed log that ended early or is damaged: the lines before were read. */
  warning?: string;
}

export interface UsageResult {
  repo: string;
  logs: LogResult[];
  /** Every build the record knows, most recently used first, with what this run added. */
  builds: (BuildUsage & { nvr: string; newDownloads: number; newPartial: number })[];
}

const MALFORMED_EXAMPLES = 5;

/** Lines a log's identity covers. */
export const HEAD_LINES = 8;

/** sha256 (hex) of the first k lines, each with its line break, for k = 1 .. lines.length. */
export function headHashes(lines: string[]): string[] {
  const h = createHash('sha256');
  return lines.map((l) => h.update(`${l}\n`).copy().digest('hex'));
}

/**
 * Which record is this log's, given the hashes of its first lines: the one made from the most of
 * them. A log first read when it had 3 lines was recorded under its 3-line head; read again with
 * 100 lines, it is found under that head and then recorded under its 8-line head.
 */
export function findProgress(logs: Readonly<Record<string, LogProgress>>, hashes: string[]): { key: string; progress: LogProgress } | undefined {
  for (let k = hashes.length; k >= 1; k--) {
    const p = logs[hashes[k - 1]!];
    if (p && (p.head ?? 1) === k) return { key: hashes[k - 1]!, progress: p };
  }
  return undefined;
}

/**
 * Reads access logs into the repository's usage record, under the repository lock (publishes
 * wait; so do other readers of logs, so no request is counted twice by two runs at once). The
 * record is written once, at the end: an interrupted run counted nothing.
 */
export async function recordUsage(
  repo: string,
  logs: string[],
  opts: {
    localTime?: LocalTime;
    now?: Date;
    /** Run under the lock once the record is written (the status page's "last downloaded"). */
    afterWrite?: () => Promise<void>;
    /** The bounds of reading a log (LOG_LIMITS; tests use small ones). */
    limits?: LogLimits;
  } = {},
): Promise<UsageResult> {
  existingDir('--repo', repo);
  if (!servedStamp(repo) && listSnapshots(repo).length === 0) throw new UsageError(`--repo: ${repo} is not a published repository (no snapshots)`);
  if (logs.length === 0) throw new UsageError('give at least one --access-log FILE');
  for (const f of logs) {
    existingFile('--access-log', f);
    onUserPath('--access-log', f, () => accessSync(f, constants.R_OK));
  }
  const localTime = opts.localTime ?? systemLocalTime;
  const limits = opts.limits ?? LOG_LIMITS;
  const now = opts.now ?? new Date();
  const unlock = await acquireLock(path.join(repo, '.lock'), `repository ${repo}`);
  try {
    const rec = readUsageRecord(repo);
    const known = knownFiles(repo, rec);
    for (const [file, k] of known) rec.files[file] = k.nvr;
    const added = new Map<string, { downloads: number; partial: number }>();
    const results: LogResult[] = [];
    for (const file of logs) {
      const r: LogResult = { file, lines: 0, alreadyRead: 0, downloads: 0, partial: 0, ignored: 0, ignoredBy: {}, malformed: 0, malformedExamples: [] };
      let done = 0;
      let prior: string | undefined;
      // The first lines are held until the identity is known (HEAD_LINES of them, or the end).
      const head: string[] = [];
      const headOverlong: (number | undefined)[] = [];
      let decided = false;
      const decide = () => {
        decided = true;
        const hashes = headHashes(head);
        const found = findProgress(rec.logs, hashes);
        done = found?.progress.lines ?? 0;
        prior = found?.key;
        r.identity = hashes.at(-1);
      };
      const consume = (line: string, n: number, overlong?: number) => {
        if (n <= done) {
          r.alreadyRead++;
          return;
        }
        checkInterrupted();
        const entry: LogEntry = overlong !== undefined ? { kind: 'malformed', reason: `a line of ${overlong} bytes, longer than any server writes (at most ${limits.maxLineBytes} read): skipped` } : parseLine(line, localTime);
        const v = classify(entry, known);
        if (v.use === 'malformed') {
          r.malformed++;
          if (r.malformedExamples.length < MALFORMED_EXAMPLES) r.malformedExamples.push(`${file}:${n}: ${v.reason}`);
        } else if (v.use === 'ignored') {
          r.ignored++;
          r.ignoredBy[v.reason] = (r.ignoredBy[v.reason] ?? 0) + 1;
        } else {
          const partial = v.use === 'partial';
          if (partial) r.partial++;
          else r.downloads++;
          addUse(rec.builds, v.nvr, (entry as { time: Date }).time, partial);
          const a = added.get(v.nvr) ?? { downloads: 0, partial: 0 };
          if (partial) a.partial++;
          else a.downloads++;
          added.set(v.nvr, a);
        }
      };
      const flushHead = () => {
        decide();
        head.forEach((l, i) => consume(l, i + 1, headOverlong[i]));
      };
      try {
        for await (const { line, complete, error, overlong } of readLogLines(file, limits)) {
          if (error) r.warning = `${file}: compressed data ends early or is damaged after line ${r.lines} (${error}); the lines before were read`;
          // A line still being written is left for the next run.
          if (!complete) break;
          r.lines++;
          if (decided) {
            consume(line, r.lines, overlong);
            continue;
          }
          // An overlong line counts in the identity by its kept start and its length.
          head.push(overlong === undefined ? line : `${line}\u0000${overlong}`);
          headOverlong.push(overlong);
          if (head.length === HEAD_LINES) flushHead();
        }
      } catch (err) {
        if (err instanceof LogTooLarge) throw new UsageError(`--access-log: ${quotePath(file)} ${err.message} (the limit of one log): not an access log as a server writes one? Nothing was recorded`);
        throw err;
      }
      if (!decided && head.length > 0) flushHead();
      // Recorded under its longest head (the record found under a shorter one is replaced). The
      // same log given twice (or a rotated copy of it) in one run is read once.
      if (r.identity && (r.lines > done || r.identity !== prior)) {
        if (prior && prior !== r.identity) delete rec.logs[prior];
        rec.logs[r.identity] = { lines: Math.max(r.lines, done), head: head.length, file: path.resolve(file), read: isoSeconds(now) };
      }
      if (r.warning) log.warn(r.warning);
      if (r.malformed > 0) log.warn(`${file}: ${r.malformed} malformed line(s) skipped, e.g. ${r.malformedExamples.join('; ')}`);
      results.push(r);
    }
    writeUsageRecord(repo, rec);
    try {
      await opts.afterWrite?.();
    } catch (err) {
      log.warn(`usage recorded, but refreshing the status page failed: ${(err as Error).message}`);
    }
    const builds = Object.entries(rec.builds)
      .map(([k, b]) => ({ nvr: k, ...b, newDownloads: added.get(k)?.downloads ?? 0, newPartial: added.get(k)?.partial ?? 0 }))
      .sort((a, b) => (a.lastDownloaded === b.lastDownloaded ? a.nvr.localeCompare(b.nvr) : a.lastDownloaded < b.lastDownloaded ? 1 : -1));
    return { repo, logs: results, builds };
  } finally {
    unlock();
  }
}
