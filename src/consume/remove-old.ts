// Removing old layer builds from a test machine without pulling an image out from under a VM.
// Layer packages are install-only, so every `dnf upgrade` adds builds beside the old ones; this
// removes the old ones deliberately: it keeps the newest builds of every installed top layer, every
// build whose files a running process holds open (a VM keeps every file of its backing chain
// open), and everything those need, and removes the rest in one dnf transaction.
import path from 'node:path';
import { log } from '../log.js';
import { planRetention, nvr } from '../plan/retention.js';
import { pidsUsing } from '../proc.js';
import { dnfRemove } from '../tools/dnf.js';
import { installedProviding } from '../tools/rpmbuild.js';

export interface RemoveOldResult {
  root: string;
  kept: { nvr: string; why: string }[];
  removed: string[];
  /** Builds kept only because a running process uses them, with the process ids. */
  inUse: { nvr: string; pids: number[] }[];
  dryRun: boolean;
}

export async function removeOld(rootArg: string, keep: number, opts: { dryRun?: boolean } = {}): Promise<RemoveOldResult> {
  const root = path.resolve(rootArg);
  const installed = (await installedProviding(root, 'installonlypkg(vm)')).filter((p) => p.provides.some((d) => d.startsWith('ost-images-layer(') || d.startsWith('ost-images-flat(')));
  const inUse: RemoveOldResult['inUse'] = [];
  const pinned = [];
  for (const p of installed) {
    const files = p.files.filter((f) => f.endsWith('.qcow2')).map((f) => path.join(root, f));
    const users = pidsUsing(files);
    if (users.size > 0) {
      pinned.push(p);
      inUse.push({ nvr: nvr(p), pids: [...users.keys()] });
    }
  }
  const d = planRetention(installed, keep, pinned);
  const result: RemoveOldResult = {
    root,
    kept: d.keep.map((p) => ({ nvr: nvr(p), why: d.reasons.get(p)! })),
    removed: d.remove.map(nvr),
    inUse,
    dryRun: !!opts.dryRun,
  };
  for (const u of inUse) log.info(`keeping ${u.nvr}: its image is open by process(es) ${u.pids.join(' ')}`);
  if (result.removed.length === 0) {
    log.info('no old layer builds to remove');
    return result;
  }
  if (opts.dryRun) {
    log.info(`would remove: ${result.removed.join(' ')}`);
    return result;
  }
  // dnf rather than rpm -e: the machine's dnf history records the removal.
  await dnfRemove(root, result.removed);
  log.info(`removed ${result.removed.length} old layer build(s): ${result.removed.join(' ')}`);
  return result;
}
