// The repository's run history: the last nightly runs and promotions, passed or not, for the status
// page. A failed run publishes nothing, so the snapshots cannot tell that it happened; this file
// can. Written under the repository lock (callers hold it), atomically, and bounded.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeJsonAtomic } from '../core/fsutil.js';
import { log } from '../core/log.js';
import type { RunRecord } from '../records/run.js';

export const HISTORY_FILE = 'history.json';
/** Runs kept: two months of nightlies. */
export const HISTORY_LIMIT = 60;


export interface History {
  schema: 1;
  runs: RunRecord[];
}

export function readHistory(repo: string): History {
  const file = path.join(repo, HISTORY_FILE);
  if (!existsSync(file)) return { schema: 1, runs: [] };
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as History;
    return Array.isArray(h.runs) ? h : { schema: 1, runs: [] };
  } catch (err) {
    // History is for people reading the page; a damaged file must not stop a publish.
    log.warn(`ignoring unreadable ${file}: ${(err as Error).message}`);
    return { schema: 1, runs: [] };
  }
}

/** Pure: the history with one more run, oldest dropped beyond the limit. */
export function withRun(h: History, rec: RunRecord, limit = HISTORY_LIMIT): History {
  return { schema: 1, runs: [...h.runs, rec].slice(-limit) };
}

/** Appends a run; the caller holds the repository lock. */
export function appendRun(repo: string, rec: RunRecord): void {
  writeJsonAtomic(path.join(repo, HISTORY_FILE), withRun(readHistory(repo), rec));
}

/** The first line of an error, short enough for a table cell. */
export function firstLine(text: string, max = 300): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
