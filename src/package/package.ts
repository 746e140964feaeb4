// Wraps layer builds into RPMs. Each package is built in a private rpmbuild topdir under the
// store's tmp directory (same file system as the images, so the image is hard-linked into the build
// root, never copied) and renamed into the store's rpms directory only when complete.
import { existsSync, copyFileSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type Handlebars from 'handlebars';
import { handlebars } from '../core/handlebars.js';
import type { LayerSet } from '../definitions/types.js';
import { StepError } from '../core/errors.js';
import { checkInterrupted } from '../core/interrupt.js';
import { log } from '../core/log.js';
import { SPECS_DIR } from '../core/paths.js';
import { FLAT_SUFFIX, rpmFileName } from '../definitions/naming.js';
import { shippedRecord, type BuildRecord } from '../records/build.js';
import type { Store } from '../store/store.js';
import { rpmbuild } from '../tools/rpmbuild.js';
import { DEFAULT_PAYLOAD, flatPackagedFiles, flatSpecView, packagedFiles, specView, type SpecView } from './spec.js';

let template: Handlebars.TemplateDelegate<SpecView> | undefined;

/** Renders the layer spec. noEscape: Handlebars' HTML escaping would turn '=' into '&#x3D;'. */
export function renderSpec(view: SpecView): string {
  template ??= handlebars().compile<SpecView>(readFileSync(path.join(SPECS_DIR, 'layer.spec.hbs'), 'utf8'), { noEscape: true, strict: true });
  return template(view);
}

export interface PackageResult {
  layer: string;
  action: 'packaged' | 'exists';
  rpm: string;
  bytes: number;
  seconds: number;
}

/** With `flat`, packages the layer build's flattened variant (see build/flatten.ts) instead. */
export async function packageBuild(ls: LayerSet, rec: BuildRecord, store: Store, payload: string, outDir?: string, flat = false): Promise<PackageResult> {
  const set = ls.set;
  const layer = ls.layers.get(rec.layer);
  if (!layer) throw new StepError(`build record for unknown layer ${rec.layer}`);
  const label = flat ? `${rec.layer}${FLAT_SUFFIX}` : rec.layer;
  const outName = rpmFileName(set, label, rec);
  const out = path.join(outDir ?? store.rpmsDir(set.name), outName);
  if (existsSync(out)) return { layer: label, action: 'exists', rpm: out, bytes: statSync(out).size, seconds: 0 };

  const t0 = Date.now();
  const imagesDir = store.imagesDir(set.name);
  const top = store.workDir(`rpmbuild-${label}`);
  try {
    // The record as shipped: nothing of one run in it, so a rebuild packages to the same payload.
    const recordFile = path.join(top, 'shipped.build.json');
    writeFileSync(recordFile, `${JSON.stringify(shippedRecord(rec), null, 2)}\n`);
    const files = flat ? flatPackagedFiles(set, rec, imagesDir) : packagedFiles(set, rec, imagesDir, recordFile);
    if (flat && !existsSync(files[0]!.source)) throw new StepError(`${label}: no flattened image ${files[0]!.source}; run 'ost-images build' first`);
    const view = flat ? flatSpecView(set, layer, rec, files, payload) : specView(set, layer, rec, files, payload);
    const buildroot = path.join(top, 'BUILDROOT');
    for (const f of files) {
      const dest = path.join(buildroot, f.path);
      mkdirSync(path.dirname(dest), { recursive: true });
      linkSync(f.source, dest);
    }
    mkdirSync(path.join(top, 'tmp'));
    const spec = path.join(top, `${view.name}.spec`);
    writeFileSync(spec, renderSpec(view));
    const outdir = path.join(top, 'RPMS');
    await rpmbuild(spec, { topdir: top, buildroot, outdir, sourceDateEpoch: rec.manifest?.sourceDateEpoch });
    try {
      renameSync(path.join(outdir, outName), out);
    } catch (err) {
      // --out on another file system: copy under a temporary name, then rename.
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      copyFileSync(path.join(outdir, outName), `${out}.partial`);
      renameSync(`${out}.partial`, out);
    }
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
  const seconds = (Date.now() - t0) / 1000;
  const bytes = statSync(out).size;
  log.info(`${label}: ${outName} (${(bytes / 2 ** 20).toFixed(0)} MiB) in ${seconds.toFixed(1)}s`);
  return { layer: label, action: 'packaged', rpm: out, bytes, seconds };
}

/** Packages the current build of each layer that has no package yet. */
export async function packageLayers(ls: LayerSet, layers: string[], store: Store, payload?: string, outDir?: string): Promise<PackageResult[]> {
  const results: PackageResult[] = [];
  for (const name of layers) {
    checkInterrupted();
    const rec = store.current(ls.set.name, name);
    if (!rec) throw new StepError(`layer '${name}' of set '${ls.set.name}' has no build yet; run 'ost-images build --set ${ls.set.name} --layer ${name}' first`);
    results.push(await packageBuild(ls, rec, store, payload ?? ls.set.package.payload ?? DEFAULT_PAYLOAD, outDir));
  }
  // Flattened variants of the requested layers that the set asks for.
  for (const name of layers.filter((l) => ls.set.flatten.includes(l))) {
    checkInterrupted();
    results.push(await packageBuild(ls, store.current(ls.set.name, name)!, store, payload ?? ls.set.package.payload ?? DEFAULT_PAYLOAD, outDir, true));
  }
  return results;
}

/** The package files of the current build of every layer; all must have been packaged. */
export function currentRpms(ls: LayerSet, store: Store): string[] {
  const files: string[] = [];
  const missing: string[] = [];
  for (const layer of ls.order) {
    const rec = store.current(ls.set.name, layer);
    if (!rec) {
      missing.push(`${layer} (not built)`);
      continue;
    }
    const names = [layer, ...(ls.set.flatten.includes(layer) ? [`${layer}${FLAT_SUFFIX}`] : [])];
    for (const name of names) {
      const rpm = path.join(store.rpmsDir(ls.set.name), rpmFileName(ls.set, name, rec));
      if (existsSync(rpm)) files.push(rpm);
      else missing.push(`${name} (not packaged)`);
    }
  }
  if (missing.length > 0) throw new StepError(`cannot publish set '${ls.set.name}': ${missing.join(', ')}; run 'ost-images build' and 'ost-images package' first`);
  return files;
}
