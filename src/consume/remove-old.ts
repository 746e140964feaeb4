// Removing old layer builds from a test machine without pulling an image out from under a VM.
// Layer packages are install-only, so every `dnf upgrade` adds builds beside the old ones; this
// removes the old ones deliberately: it keeps the newest builds of every installed top layer, every
// build a VM made by `ost-images vm` is backed by (running or stopped: a stopped VM's overlay is as
// dead without its backing files as a running one), every build whose files a running process holds
// open (a VM started some other way keeps every file of its backing chain open), and everything those
// need, and removes the rest in one dnf transaction.
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { log } from '../core/log.js';
import { planRetention, nvr } from '../plan/retention.js';
import { pidsUsing } from '../core/proc.js';
import { dnfRemove } from '../tools/dnf.js';
import { installedProviding } from '../tools/rpmbuild.js';
import { defaultVmDir, vmUses } from './vm.js';

export interface RemoveOldResult {
  root: string;
  kept: { nvr: string; why: string }[];
  removed: string[];
  /** Builds kept only because a running process uses them, with the process ids. */
  inUse: { nvr: string; pids: number[] }[];
  /** Builds kept because a VM made by `ost-images vm` is backed by them: which VM keeps which build. */
  vms: { vm: string; state: string; overlay: string; nvr: string }[];
  dryRun: boolean;
}

const real = (f: string): string => {
  try {
    return realpathSync(f);
  } catch {
    return f;
  }
};

export async function removeOld(rootArg: string, keep: number, opts: { dryRun?: boolean; vmDir?: string } = {}): Promise<RemoveOldResult> {
  const root = path.resolve(rootArg);
  const installed = (await installedProviding(root, 'installonlypkg(vm)')).filter((p) => p.provides.some((d) => d.startsWith('ost-images-layer(') || d.startsWith('ost-images-flat(')));
  const uses = await vmUses(opts.vmDir ?? defaultVmDir());
  const inUse: RemoveOldResult['inUse'] = [];
  const vms: RemoveOldResult['vms'] = [];
  // Why each pinned build is kept, in words for the log and --json.
  const pinned = new Map<(typeof installed)[number], string[]>();
  const pin = (p: (typeof installed)[number], why: string): void => void pinned.set(p, [...(pinned.get(p) ?? []), why]);
  for (const p of installed) {
    const files = p.files.filter((f) => f.endsWith('.qcow2')).map((f) => path.join(root, f));
    // Chains name resolved files; the package's may be reached through symlinks (a moved tree).
    const ours = new Set(files.map(real));
    for (const u of uses) {
      if (!u.backing.some((f) => ours.has(f))) continue;
      pin(p, `VM ${u.vm} (${u.state}) is backed by it`);
      vms.push({ vm: u.vm, state: u.state, overlay: u.overlay, nvr: nvr(p) });
    }
    const users = pidsUsing(files);
    if (users.size > 0) {
      pin(p, `open by process(es) ${[...users.keys()].join(' ')}`);
      inUse.push({ nvr: nvr(p), pids: [...users.keys()] });
    }
  }
  const d = planRetention(installed, keep, pinned.keys());
  const result: RemoveOldResult = {
    root,
    kept: d.keep.map((p) => ({ nvr: nvr(p), why: d.reasons.get(p) === 'pinned' ? pinned.get(p)!.join('; ') : d.reasons.get(p)! })),
    removed: d.remove.map(nvr),
    inUse,
    vms,
    dryRun: !!opts.dryRun,
  };
  for (const v of vms) log.info(`keeping ${v.nvr}: VM ${v.vm} (${v.state}) is backed by it (${v.overlay})`);
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
