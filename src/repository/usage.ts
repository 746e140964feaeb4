// The repository's usage record, `<repo>/usage.json`: who still downloads which build.
//
// `ost-images usage` (usage/usage.ts) adds every download of a layer package found in web-server
// access logs; retention by use (`--keep-used-within DAYS`, publish/prune-by-use.ts) keeps the
// builds downloaded within that window (and what they require), and the status page shows the
// last download of each build.
//
// The record is keyed by build (NVR: name-version-release), the name retention and the status page
// know builds by, and it remembers the pool file names each build was served as: once retention
// removed a build from every snapshot, a log read late still attributes requests for its file.
//
// It lives at the repository root (beside ost-images.repo) but outside every snapshot: usage is a
// fact about the served URL over time, not about one snapshot, and switching snapshots must not
// lose it. It is served like any file of the root; it holds nothing but build names, counts and
// times. Writers take the repository lock (the one publish takes) and replace the file atomically,
// so a reader (the status page, prune) sees the old record or the new one, never a part.
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { StepError } from '../core/errors.js';
import { writeJsonAtomic } from '../core/fsutil.js';
import { nvr, usedWithinWindow, type UsedWithin } from '../plan/retention.js';
import { type PackageEntry } from './snapshot.js';

export const USAGE_FILE = 'usage.json';

export interface BuildUsage {
  /** Complete downloads counted so far (200 with the whole file). */
  downloads: number;
  /** The newest download (complete or partial), ISO 8601 in UTC ("2026-11-27T10:02:11Z"). */
  lastDownloaded: string;
  /**
   * Partial ones: 206 answers to range requests, and 200 answers cut short (fewer bytes than the
   * file has). They show the build in use, so they move lastDownloaded, but they are not counted
   * as downloads: dnf resumes an interrupted download with a range request, and counting both
   * halves would count one download twice.
   */
  partial?: number;
}

/**
 * How far a log has been read. A log is known by the hash of its first lines (up to HEAD_LINES):
 * that identity survives logrotate's rename and compression (access.log -> access.log.1 ->
 * access.log.2.gz), while a log truncated in place (copytruncate) or a new one starts with other
 * lines. Several lines, not one: the logs of two mirrors can begin with the same line (a monitoring
 * probe asking both in the same second), hardly with the same eight. `lines` complete lines of it
 * were consumed (counted, ignored or malformed alike): reading it again, or after it grew, handles
 * only the lines after those.
 */
export interface LogProgress {
  lines: number;
  /** How many first lines the identity hashes (fewer than HEAD_LINES while the log was shorter). */
  head: number;
  /** Where it was last read from (for people; the identity is the hash). */
  file: string;
  /** When (ISO). */
  read: string;
}

export interface UsageRecord {
  schema: 1;
  /** By build (NVR). */
  builds: Record<string, BuildUsage>;
  /**
   * Every pool file name a snapshot of this repository listed when usage was last read, with its
   * build: a log read after retention removed a build still attributes requests for its file.
   */
  files: Record<string, string>;
  /** By log identity (sha256 of its first lines, hex). */
  logs: Record<string, LogProgress>;
}

export const usageFile = (repo: string): string => path.join(repo, USAGE_FILE);

export function emptyUsage(): UsageRecord {
  return { schema: 1, builds: {}, files: {}, logs: {} };
}

/** The whole record (empty when the repository has none yet). */
export function readUsageRecord(repo: string): UsageRecord {
  const file = usageFile(repo);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyUsage();
    throw new StepError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let rec: UsageRecord;
  try {
    rec = JSON.parse(text) as UsageRecord;
  } catch (err) {
    throw new StepError(`${file} is not valid JSON (${(err as Error).message}); move it aside and read the access logs again to rebuild it`);
  }
  const isMap = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (rec?.schema !== 1 || !isMap(rec.builds) || !isMap(rec.files) || !isMap(rec.logs)) {
    throw new StepError(`${file} is not a usage record of this ost-images (schema ${String((rec as { schema?: unknown } | null)?.schema)})`);
  }
  return rec;
}

/** Per build (NVR), how often and when it was last downloaded. Empty when there is no record. */
export function readUsage(repo: string): Map<string, BuildUsage> {
  return new Map(Object.entries(readUsageRecord(repo).builds).map(([k, b]) => [k, { ...b }]));
}

/** Replaces the record atomically. The caller holds the repository lock. */
export function writeUsageRecord(repo: string, rec: UsageRecord): void {
  // A writer killed between its temporary file and the rename leaves the temporary behind.
  for (const f of readdirSync(repo)) if (f.startsWith(`.${USAGE_FILE}.tmp-`)) rmSync(path.join(repo, f), { force: true });
  writeJsonAtomic(usageFile(repo), rec);
}

/** The "used" rule of retention, with the record read now. */
export function usedWithin(repo: string, days: number, now: Date): UsedWithin {
  return { usage: readUsage(repo), withinDays: days, now };
}

/**
 * A pin that keeps every build downloaded within `days`, reading usage.json when first asked.
 * Publish itself no longer takes it: for `--keep-used-within` it reads the record with usedWithin
 * under the repository lock and plans with the "used" rule, so its plan names the rule and the
 * download (publish/plan.ts). No caller in src/ is left; candidate for removal with its unit test.
 */
export function usedPin(repo: string, days: number, now?: Date): { pin: (p: PackageEntry) => boolean; used: () => UsedWithin | undefined } {
  let used: UsedWithin | undefined;
  return {
    pin: (p) => {
      // Without a given `now`, the clock when retention runs (a nightly publishes hours after it starts).
      used ??= usedWithin(repo, days, now ?? new Date());
      const u = used.usage.get(nvr(p));
      return usedWithinWindow(u, days, used.now);
    },
    used: () => used,
  };
}

/**
 * Retention by use is only as good as the record: say so when no log was read within the window
 * (the job feeding `ost-images usage` may have stopped), instead of quietly pruning as by count.
 */
export function staleness(rec: UsageRecord, days: number, now: Date): string | undefined {
  const reads = Object.values(rec.logs).map((l) => l.read).sort();
  const last = reads.at(-1);
  if (!last) return `no access log has been read into ${USAGE_FILE} yet (ost-images usage): --keep-used-within keeps nothing more than --keep`;
  if (Date.parse(last) < now.getTime() - days * 86_400_000) return `the last access log was read into ${USAGE_FILE} at ${last}, more than ${days} day(s) ago: downloads since then are not known`;
  return undefined;
}
