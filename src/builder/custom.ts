// Custom-package layers (`ost-images build --with-packages DIR --on LAYER --name NAME`): a
// throw-away layer on top of any layer of a set, with a developer's freshly built packages
// installed from a local directory (.deb for Debian sets, .rpm for dnf-based ones), so they can
// test their build inside the images without publishing it. The layer exists only in the store;
// its key includes every package file's sha256, so changed packages make a new build.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { LayerDef, LayerSet } from '../definitions/types.js';
import { LAYER_NAME } from '../definitions/names.js';
import { UsageError, quote, quoteMiddle } from '../core/errors.js';
import { NAME_MAX, maxLayerNameLength, tooLong } from '../definitions/limits.js';

export interface CustomLayerRequest {
  dir: string;
  on: string;
  name: string;
}

/** The set with the custom layer added (validated: bad input is a UsageError, exit 2). */
export function withCustomLayer(ls: LayerSet, req: CustomLayerRequest): LayerSet {
  const ext = ls.set.distro.family === 'debian' ? '.deb' : '.rpm';
  const dir = path.resolve(req.dir);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--with-packages: '${req.dir}' is not a directory`);
  if (!ls.layers.has(req.on)) throw new UsageError(`--on: set '${ls.set.name}' has no layer '${req.on}' (layers: ${ls.order.join(', ')})`);
  if (!LAYER_NAME.test(req.name)) throw new UsageError(`--name: ${quote(req.name)} is not a valid layer name (lower-case letters, digits and . _ + -)`);
  const parts = { set: ls.set.name, prefix: ls.set.package.prefix, version: ls.set.distro.version, flattened: false };
  const long = tooLong({ ...parts, layer: req.name });
  if (long) {
    throw new UsageError(`--name: ${quote(req.name)} makes the ${long.what} ${quoteMiddle(long.name)} ${long.bytes} bytes long; at most ${NAME_MAX}: in set '${ls.set.name}' a layer name can have at most ${maxLayerNameLength(parts)} characters`);
  }
  if (ls.layers.has(req.name)) throw new UsageError(`--name: '${req.name}' is a layer of set '${ls.set.name}' already; pick a name of your own`);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(ext) && statSync(path.join(dir, f)).isFile())
    .sort()
    .map((f) => ({ name: f, path: path.join(dir, f), sha256: createHash('sha256').update(readFileSync(path.join(dir, f))).digest('hex') }));
  if (files.length === 0) throw new UsageError(`--with-packages: no ${ext} files in ${dir} (set '${ls.set.name}' is ${ls.set.distro.family}-based)`);
  const layer: LayerDef = {
    name: req.name,
    dir,
    file: dir,
    description: `Custom packages (${files.map((f) => f.name).join(', ')}) on ${req.on}`,
    parent: req.on,
    steps: [{ kind: 'install-local', files, index: 0 }],
    upstream: [],
    knownDifferences: [],
  };
  const layers = new Map(ls.layers);
  layers.set(req.name, layer);
  return { set: ls.set, layers, order: [...ls.order, req.name] };
}
