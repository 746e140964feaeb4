// Flattened variants: for the layers a set lists under `flatten`, the current build's whole
// backing chain squashed into one standalone qcow2 (`qemu-img convert` without a backing file),
// for consumers who prefer one file to a deep chain. It ships with the chain's root key pair,
// under the flat image's name, so test-boot and users log in the same way.
import { chmodSync, existsSync, linkSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type { LayerSet } from '../definitions/types.js';
import { StepError } from '../core/errors.js';
import { checkInterrupted } from '../core/interrupt.js';
import { log } from '../core/log.js';
import { flatImageFileName, sshKeyFileName } from '../definitions/naming.js';
import type { BuildRecord } from '../records/build.js';
import type { Store } from '../store/store.js';
import * as qemuImg from '../tools/qemu-img.js';

export interface FlattenResult {
  layer: string;
  action: 'flattened' | 'exists';
  image: string;
  bytes: number;
  seconds: number;
}

/** The base build at the bottom of a build's chain. */
export function baseOf(store: Store, rec: BuildRecord): BuildRecord {
  let cur = rec;
  while (cur.parent) {
    const p = cur.parent;
    const parent = store.builds(rec.set, p.layer).find((b) => b.release === p.release);
    if (!parent) throw new StepError(`build ${p.layer} ${p.version}-${p.release}, the parent of ${cur.layer}, is not in the store`);
    cur = parent;
  }
  return cur;
}

/** The flat image's key pair: the chain's base key, named after the flat image (test-boot's rule). */
export function flatKeyFileName(rec: BuildRecord): string {
  return sshKeyFileName(rec.set, `${rec.layer}-flat`, rec);
}

/**
 * The bytes a file occupies: what `qemu-img info` reports as actual-size for an image in a file
 * (its allocated blocks, st_blocks x 512), without starting qemu-img: a build that reuses
 * everything asks it of every flat image.
 */
function allocatedBytes(file: string): number {
  return statSync(file).blocks * 512;
}

/** `only`: flatten just these of the set's flattened layers (a CI layer job makes its own layer's). */
export async function flattenLayers(ls: LayerSet, store: Store, only?: string[]): Promise<FlattenResult[]> {
  const results: FlattenResult[] = [];
  const dir = store.imagesDir(ls.set.name);
  for (const layer of ls.set.flatten.filter((l) => !only || only.includes(l))) {
    checkInterrupted();
    const rec = store.current(ls.set.name, layer);
    if (!rec) continue;
    const file = flatImageFileName(ls.set.name, layer, rec);
    const out = path.join(dir, file);
    if (existsSync(out)) {
      results.push({ layer, action: 'exists', image: file, bytes: allocatedBytes(out), seconds: 0 });
      continue;
    }
    const t0 = Date.now();
    const partial = path.join(dir, `.${file}.partial`);
    log.info(`${layer}: flattening ${rec.image} and its chain into ${file}`);
    try {
      await qemuImg.compact(path.join(dir, rec.image), partial);
      await qemuImg.check(partial);
      chmodSync(partial, 0o444);
      const base = baseOf(store, rec);
      if (base.sshKey) {
        for (const [from, to] of [[base.sshKey.private, flatKeyFileName(rec)], [base.sshKey.public, `${flatKeyFileName(rec)}.pub`]] as const) {
          rmSync(path.join(dir, to), { force: true });
          linkSync(path.join(dir, from), path.join(dir, to));
        }
      }
      renameSync(partial, out);
    } catch (err) {
      rmSync(partial, { force: true });
      throw err;
    }
    const seconds = (Date.now() - t0) / 1000;
    const bytes = allocatedBytes(out);
    log.info(`${layer}: ${file} (${(bytes / 2 ** 20).toFixed(0)} MiB, standalone) in ${seconds.toFixed(1)}s`);
    results.push({ layer, action: 'flattened', image: file, bytes, seconds });
  }
  return results;
}
