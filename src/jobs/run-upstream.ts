// One view of the upstream mirrors for a whole pipeline run. Every job of a run plans its set, and
// the upstream digests (Debian's InRelease, a dnf repository's repomd.xml) are part of every key.
// Were each job to fetch them itself, a mirror push between the base job and the upgrade job
// (Debian's mirrors update several times a day; -security more often) would give the upgrade job
// another base key than the one the base job staged, and it would refuse to build: a nightly lost
// to bad timing. So the first job of a run that needs them fetches them once and records them in
// staging, beside the run's gate records:
//
//   <staging>/gate/<set>/<run>/@upstream.json      (a layer name cannot contain '@')
//
// and every later job of the run, on any runner, plans with those. It is created by link(2), which
// is atomic and fails with EEXIST on NFS too (see lock.ts): of two jobs starting together, one
// record wins and both use it. The run's keys then describe the mirror as it was when the run
// began, as `ost-images nightly` plans once for all its layers; content fetched later during the
// run may be newer, and the next run's keys, from a fresh view, rebuild what moved.
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LayerSet } from '../definitions/types.js';
import { StepError } from '../core/errors.js';
import { writeJsonAtomic } from '../core/fsutil.js';
import { log } from '../core/log.js';
import { resolveUpstream, upstreamUrls, type Digests, type UpstreamView } from '../plan/upstream.js';
import { gateRunDir } from '../repository/gate.js';

export const RUN_UPSTREAM_FILE = '@upstream.json';

interface RunUpstream {
  schema: 1;
  set: string;
  run: string;
  /** url -> sha256 */
  digests: Digests;
  /** url -> the date the metadata names (seconds); records of older versions have none. */
  dates?: Record<string, number>;
  fetched: string;
  host: string;
}

export const runUpstreamFile = (staging: string, set: string, run: string): string => path.join(gateRunDir(staging, set, run), RUN_UPSTREAM_FILE);

function readRecord(file: string): RunUpstream {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as RunUpstream;
    if (r.schema !== 1 || typeof r.digests !== 'object' || r.digests === null) throw new Error('not a run upstream record of this version');
    return r;
  } catch (err) {
    throw new StepError(`the run's upstream record ${file} is unreadable: ${(err as Error).message}`);
  }
}

export interface RunDigestsOptions {
  /** The staging directory (shared file system); without it, every job fetches on its own. */
  staging?: string;
  /** The pipeline run; without it, every job fetches on its own. */
  run?: string;
  offline?: boolean;
}

/**
 * The digests every job of `run` plans `ls` with: the run's record when one exists, else fetched
 * now (or, offline, the store's last known) and recorded for the jobs after this one.
 */
export async function runDigests(ls: LayerSet, storeRoot: string, o: RunDigestsOptions): Promise<UpstreamView> {
  const urls = upstreamUrls(ls);
  if (urls.length === 0) return { digests: {}, dates: {} };
  if (!o.staging || !o.run) {
    if (!o.offline) log.info(`${ls.set.name}: no run or staging directory, so this job's upstream view is its own (a mirror that moves during the run can make a child job refuse)`);
    return resolveUpstream(ls, storeRoot, { offline: o.offline });
  }
  const file = runUpstreamFile(o.staging, ls.set.name, o.run);
  if (existsSync(file)) return recorded(ls, file, urls);
  const view = await resolveUpstream(ls, storeRoot, { offline: o.offline });
  mkdirSync(path.dirname(file), { recursive: true });
  const mine = `${file}.${os.hostname()}-${process.pid}`;
  writeJsonAtomic(mine, { schema: 1, set: ls.set.name, run: o.run, digests: view.digests, dates: view.dates, fetched: new Date().toISOString(), host: os.hostname() } satisfies RunUpstream);
  try {
    linkSync(mine, file);
    log.info(`${ls.set.name}: upstream as of now recorded for run ${o.run}: every job of the run plans with it`);
    return view;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return recorded(ls, file, urls); // Another job of the run recorded first: its view wins.
  } finally {
    rmSync(mine, { force: true });
  }
}

function recorded(ls: LayerSet, file: string, urls: string[]): UpstreamView {
  const r = readRecord(file);
  const missing = urls.filter((u) => !(u in r.digests));
  if (missing.length > 0) {
    // The layers changed between jobs of one run (a retried job on a newer commit): no common view.
    throw new StepError(`the run's upstream record ${file} has no digest for ${missing.join(', ')}: the set's upstream sources changed during the run; start a new pipeline`);
  }
  log.info(`${ls.set.name}: planning with run ${r.run}'s upstream, recorded ${r.fetched} by ${r.host}`);
  const dates = r.dates ?? {};
  return { digests: Object.fromEntries(urls.map((u) => [u, r.digests[u]!])), dates: Object.fromEntries(urls.filter((u) => dates[u] !== undefined).map((u) => [u, dates[u]!])) };
}
