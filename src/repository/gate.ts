// Gate records: what a pipeline's boot jobs found, kept in the staging repository where the
// promotion job (on whichever runner) reads them:
//
//   <staging>/gate/<set>/<run>/<layer>.json    one per top layer and flattened variant booted
//
// A record names the exact builds booted (the NVRs of the chain installed), so promotion publishes
// exactly what passed, and a later run that would boot the very same builds can take the result
// instead of booting again. Records are written whole (a private name, then rename), so a reader
// on any host sees a complete record or none.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { writeJsonAtomic } from '../core/fsutil.js';
import os from 'node:os';
import path from 'node:path';
import { RUN_ID } from '../records/gate.js';
import type { GateRecord } from '../records/gate.js';


export const GATE_DIR = 'gate';

export const gateSetDir = (staging: string, set: string): string => path.join(staging, GATE_DIR, set);
export const gateRunDir = (staging: string, set: string, run: string): string => path.join(gateSetDir(staging, set), run);
export const gateFile = (staging: string, set: string, run: string, layer: string): string => path.join(gateRunDir(staging, set, run), `${layer}.json`);

/** Complete, fsynced, then renamed into place (writeJsonAtomic: a temporary name unique across hosts). */
export function writeGateRecord(staging: string, rec: GateRecord): string {
  const file = gateFile(staging, rec.set, rec.run, rec.layer);
  mkdirSync(path.dirname(file), { recursive: true });
  writeJsonAtomic(file, rec);
  return file;
}

export type GateRead = { state: 'missing' } | { state: 'damaged'; error: string } | { state: 'present'; record: GateRecord };

export function readGateRecord(file: string): GateRead {
  if (!existsSync(file)) return { state: 'missing' };
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as GateRecord;
    if (r.schema !== 1 || typeof r.ok !== 'boolean' || !Array.isArray(r.nvrs)) return { state: 'damaged', error: 'not a gate record of this version' };
    return { state: 'present', record: r };
  } catch (err) {
    return { state: 'damaged', error: (err as Error).message };
  }
}

/** The set's runs that have records, newest first (by the newest record's time). */
export function listRuns(staging: string, set: string): { run: string; newest: number }[] {
  const dir = gateSetDir(staging, set);
  if (!existsSync(dir)) return [];
  const runs: { run: string; newest: number }[] = [];
  for (const run of readdirSync(dir)) {
    if (!RUN_ID.test(run)) continue; // Our own temporary and trash names start with '.'.
    let newest = 0;
    // '.': our temporary names; '@': the run's other records (run-upstream.ts), never a layer's.
    for (const f of readdirSync(path.join(dir, run)).filter((f) => f.endsWith('.json') && !f.startsWith('.') && !f.startsWith('@'))) {
      const r = readGateRecord(path.join(dir, run, f));
      if (r.state === 'present') newest = Math.max(newest, Date.parse(r.record.finished) || 0);
    }
    runs.push({ run, newest });
  }
  return runs.sort((a, b) => b.newest - a.newest || b.run.localeCompare(a.run));
}

const sameBuilds = (a: string[], b: string[]): boolean => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);

/** A passing record of any run for exactly these builds of this layer, the newest first. */
export function findPassed(staging: string, set: string, layer: string, nvrs: string[]): GateRecord | undefined {
  for (const { run } of listRuns(staging, set)) {
    const r = readGateRecord(gateFile(staging, set, run, layer));
    if (r.state === 'present' && r.record.ok && sameBuilds(r.record.nvrs, nvrs)) return r.record;
  }
  return undefined;
}

/**
 * Deletes the records of all but the `keep` newest runs of the set, never those of `current`.
 * A run's directory is renamed aside first, so nobody reads it half-deleted.
 */
export function trimGateRecords(staging: string, set: string, keep: number, current: string): string[] {
  const runs = listRuns(staging, set);
  const kept = new Set([current, ...runs.slice(0, keep).map((r) => r.run)]);
  const removed: string[] = [];
  for (const { run } of runs) {
    if (kept.has(run)) continue;
    const dir = gateRunDir(staging, set, run);
    const trash = path.join(gateSetDir(staging, set), `.trash-${os.hostname()}-${process.pid}-${run}`);
    try {
      renameSync(dir, trash);
    } catch {
      continue; // Another promotion trims it right now.
    }
    rmSync(trash, { recursive: true, force: true });
    removed.push(run);
  }
  return removed;
}
