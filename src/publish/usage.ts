// Who still downloads which build: the repository's usage record, `<repo>/usage.json`.
//
// `ost-images usage` reads web-server access logs and adds every download of a layer package to
// this record; `prune --keep-used-within DAYS` keeps the builds downloaded within that window (and
// what they require), and the status page shows the last download of each build.
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
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { StepError } from '../errors.js';
import { writeJsonAtomic } from '../fsutil.js';

export const USAGE_FILE = 'usage.json';

export interface BuildUsage {
  /** Successful downloads counted so far. */
  downloads: number;
  /** The newest of them, ISO 8601 in UTC ("2026-11-27T10:02:11Z"). */
  lastDownloaded: string;
}

/** What the file remembers of one build: its usage, and the pool file names it was served as. */
export interface BuildRecord extends BuildUsage {
  files: string[];
}

/**
 * How far a log has been read. A log is known by the hash of its first line (its identity survives
 * logrotate's rename and compression; a truncated or new log starts with another line) and the
 * number of complete lines already counted: reading it again counts only the lines after those.
 */
export interface LogProgress {
  /** Complete lines consumed (counted, ignored or malformed alike). */
  lines: number;
  /** Where it was last read from (for people; the identity is the hash). */
  file: string;
  /** When it was last read (ISO). */
  read: string;
}

export interface UsageRecord {
  schema: 1;
  /** By NVR. */
  builds: Record<string, BuildRecord>;
  /** By log identity: sha256 of the log's first line, hex. */
  logs: Record<string, LogProgress>;
}

export const usageFile = (repo: string): string => path.join(repo, USAGE_FILE);

export function emptyUsage(): UsageRecord {
  return { schema: 1, builds: {}, logs: {} };
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
    throw new StepError(`${file} is not valid JSON (${(err as Error).message}); it is rebuilt only from the logs: move it aside and read the logs again`);
  }
  if (rec?.schema !== 1 || typeof rec.builds !== 'object' || typeof rec.logs !== 'object' || rec.builds === null || rec.logs === null) {
    throw new StepError(`${file} is not a usage record of this ost-images (schema ${String(rec?.schema)})`);
  }
  return rec;
}

/** Per build (NVR), how often and when it was last downloaded. Empty when there is no record. */
export function readUsage(repo: string): Map<string, BuildUsage> {
  const rec = readUsageRecord(repo);
  return new Map(Object.entries(rec.builds).map(([nvr, b]) => [nvr, { downloads: b.downloads, lastDownloaded: b.lastDownloaded }]));
}

/** Replaces the record atomically. The caller holds the repository lock. */
export function writeUsageRecord(repo: string, rec: UsageRecord): void {
  writeJsonAtomic(usageFile(repo), rec);
}
