// The status page: `index.html` inside each snapshot, served through `repo/index.html ->
// current/index.html`, so it is switched together with the metadata it describes (snapshot.ts).
// Written before the switch by every publish, prune and promotion; rewritten in place (temp +
// rename) when a run that published nothing is recorded, so the page says it happened; rewritten
// before a rollback serves an older snapshot again, with today's history.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { writeFileAtomic } from '../core/fsutil.js';
import { acquireLock } from '../core/lock.js';
import { log } from '../core/log.js';
import { SPECS_DIR } from '../core/paths.js';
import { readBuilds } from '../repository/builds.js';
import { readUsage } from '../repository/usage.js';
import type { RunRecord } from '../records/run.js';
import { appendRun, readHistory } from '../repository/history.js';
import { INDEX_HTML, PUBLIC_KEY_FILE, REPO_FILE, servedStamp, snapshotDir, type SnapshotRecord } from '../repository/snapshot.js';
import { statusView, type StatusView, type UsageFacts } from './status-view.js';

export const TEMPLATE_FILE = 'status-page.html.hbs';

let template: Handlebars.TemplateDelegate<StatusView> | undefined;

/**
 * HTML escaping stays on (Handlebars' default): every value from the data (layer descriptions,
 * error messages, package names) is printed escaped. strict: a name the view model lacks is an
 * error, not an empty cell.
 */
export function renderStatusPage(view: StatusView): string {
  template ??= Handlebars.compile<StatusView>(readFileSync(path.join(SPECS_DIR, TEMPLATE_FILE), 'utf8'), { strict: true });
  return template(view);
}

/** Downloads per build, when `ost-images usage` has recorded any (else an empty map). */
async function usageOf(repo: string): Promise<Map<string, UsageFacts>> {
  try {
    return readUsage(repo);
  } catch (err) {
    log.warn(`status page: no download data: ${(err as Error).message}`);
    return new Map();
  }
}

/** The page of snapshot `rec`, whose directory is `dir` (a snapshot still being built, or a served one). */
export async function statusPageHtml(repo: string, dir: string, rec: SnapshotRecord): Promise<string> {
  const view = statusView({
    snapshot: rec,
    builds: readBuilds(dir).builds,
    history: readHistory(repo).runs,
    usage: await usageOf(repo),
    links: { repoFile: REPO_FILE, key: rec.signedBy ? PUBLIC_KEY_FILE : undefined },
  });
  return renderStatusPage(view);
}

/**
 * Writes `index.html` into a snapshot's directory. A page that cannot be made is a warning: the
 * packages and metadata are what machines need, and they are not held back for it.
 */
export async function writeStatusPage(repo: string, dir: string, rec: SnapshotRecord): Promise<boolean> {
  try {
    writeFileAtomic(path.join(dir, INDEX_HTML), await statusPageHtml(repo, dir, rec));
    return true;
  } catch (err) {
    log.warn(`status page of snapshot ${rec.stamp} not written: ${(err as Error).message}`);
    return false;
  }
}

/** Rewrites the served snapshot's page in place (after recording a run); the caller holds the lock. */
export async function refreshServedPage(repo: string): Promise<void> {
  const stamp = existsSync(repo) ? servedStamp(repo) : undefined;
  if (!stamp) return;
  const dir = snapshotDir(repo, stamp);
  const file = path.join(dir, 'snapshot.json');
  if (!existsSync(file)) return;
  await writeStatusPage(repo, dir, JSON.parse(readFileSync(file, 'utf8')) as SnapshotRecord);
}

/**
 * Records a run (a nightly, a promotion) in the repository's history and rewrites the served
 * page so it shows it: under the repository lock, like every writer of the repository. A
 * repository that does not exist yet gets nothing (a run must not create one). Never fails the
 * run: the run's own exit code and report say what happened to it.
 */
export async function recordRun(repo: string, rec: RunRecord): Promise<void> {
  // Only into a published repository: a run that failed (or a promotion that was refused) before
  // anything was ever published there must leave an empty or mistyped directory as it found it.
  if (!existsSync(repo) || !servedStamp(repo)) {
    log.debug(`not recording the ${rec.kind} run in ${repo}: no published repository there yet`);
    return;
  }
  try {
    const unlock = await acquireLock(path.join(repo, '.lock'), `repository ${repo}`);
    try {
      appendRun(repo, rec);
      await refreshServedPage(repo);
    } finally {
      unlock();
    }
  } catch (err) {
    log.warn(`could not record the ${rec.kind} run in ${repo}'s history: ${(err as Error).message}`);
  }
}
