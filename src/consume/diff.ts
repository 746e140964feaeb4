// `ost-images diff`: what a layer build changed in packages, read from the files the build wrote
// beside its image (in the store, or installed from the layer's package).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { PackageDiff } from '../records/package-diff.js';
import { StepError } from '../core/errors.js';

/** The diff file beside an image: `engine-installed-12-R.qcow2` -> `engine-installed-12-R.package-diff.json`. */
export function diffBesideImage(image: string): PackageDiff {
  const file = image.replace(/\.qcow2$/, '.package-diff.json');
  if (!existsSync(file)) throw new StepError(`${path.basename(image)} has no package diff beside it (${file}); it was built without a package list`);
  return JSON.parse(readFileSync(file, 'utf8')) as PackageDiff;
}
