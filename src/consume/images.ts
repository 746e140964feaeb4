// `ost-images images`: what a test machine has installed (sets, layers, builds), where each stable
// name points, each build's backing chain, and which VMs (made by `vm`) are backed by which build.
import path from 'node:path';
import * as qemuImg from '../tools/qemu-img.js';
import { log } from '../core/log.js';
import { scanInstalled, vrOf } from './installed.js';
import { vmUses, type VmUse } from './vm.js';

export interface ImagesReport {
  imagesDir: string;
  vmDir: string;
  sets: {
    set: string;
    key: string | null;
    layers: {
      layer: string;
      /** The stable name and the build file it resolves to (null: dangling), or null when there is none. */
      stable: { path: string; target: string | null } | null;
      builds: {
        build: string;
        file: string;
        /** The file is what the stable name points at. */
        current: boolean;
        /** Backing chain below the file, nearest first (resolved paths); null when it does not resolve. */
        chain: string[] | null;
        /** VMs whose overlay is backed by this build, directly or further down. */
        usedBy: string[];
      }[];
    }[];
  }[];
  vms: (VmUse & { uses: string[] })[];
}

export async function imagesReport(imagesDirArg: string, vmDirArg: string): Promise<ImagesReport> {
  const imagesDir = path.resolve(imagesDirArg);
  const vmDir = path.resolve(vmDirArg);
  const installed = scanInstalled(imagesDir);
  const uses = await vmUses(vmDir);
  const buildOf = new Map<string, string>();
  for (const s of installed) for (const l of s.layers) for (const b of l.builds) buildOf.set(b.file, `${s.set}/${l.layer} ${vrOf(b)}`);
  const report: ImagesReport = {
    imagesDir,
    vmDir,
    sets: [],
    vms: uses.map((u) => ({ ...u, uses: u.backing.map((f) => buildOf.get(f)).filter((b): b is string => !!b) })),
  };
  for (const s of installed) {
    const layers: ImagesReport['sets'][number]['layers'] = [];
    for (const l of s.layers) {
      const builds = [];
      for (const b of l.builds) {
        let chain: string[] | null = null;
        try {
          chain = (await qemuImg.chain(b.file, { shared: true })).slice(1).map((i) => i.filename);
        } catch (err) {
          log.warn(`${b.file}: backing chain does not resolve: ${(err as Error).message.split('\n')[0]}`);
        }
        builds.push({
          build: vrOf(b),
          file: b.file,
          current: l.stable?.target === b.file,
          chain,
          usedBy: uses.filter((u) => u.backing.includes(b.file)).map((u) => u.vm),
        });
      }
      layers.push({ layer: l.layer, stable: l.stable ?? null, builds });
    }
    report.sets.push({ set: s.set, key: s.key ?? null, layers });
  }
  return report;
}

/** The report for people, one line per build. */
export function renderImages(r: ImagesReport): string {
  const lines: string[] = [`installed images in ${r.imagesDir}:`];
  if (r.sets.length === 0) lines.push('  (none)');
  for (const s of r.sets) {
    lines.push(`  set ${s.set}  key: ${s.key ?? '(none)'}`);
    for (const l of s.layers) {
      const stable = l.stable ? `${path.basename(l.stable.path)} -> ${l.stable.target ? path.basename(l.stable.target) : '(dangling)'}` : '(no stable name)';
      lines.push(`    ${l.layer}: ${stable}`);
      for (const b of l.builds) {
        const chain = b.chain === null ? ' on a broken chain' : b.chain.length > 0 ? ` on ${b.chain.map((f) => path.basename(f)).join(' <- ')}` : '';
        const used = b.usedBy.length > 0 ? `  used by VM ${b.usedBy.join(', ')}` : '';
        lines.push(`      ${b.current ? '*' : ' '} ${b.build}${chain}${used}`);
      }
    }
  }
  lines.push(`VMs (${r.vmDir}):`);
  if (r.vms.length === 0) lines.push('  (none)');
  for (const v of r.vms) lines.push(`  ${v.vm} (${v.state}): ${v.overlay} on ${v.uses.join(', ') || v.backing.join(' <- ') || '(no backing file)'}`);
  return `${lines.join('\n')}\n`;
}
