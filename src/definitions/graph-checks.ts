// Checks across the files of a set, once every file has been checked on its own: the layer graph
// (unknown parents, cycles, the order parents-first), what set.yaml names of its layers (flatten),
// what a build will need of set.yaml (a mirror for a mmdebstrap base), and the file names every
// layer becomes (limits.ts).
import path from 'node:path';
import { type ConfigIssue, quote, quoteMiddle } from '../core/errors.js';
import type { FileIssues } from './kernel.js';
import type { BaseKind, GraphNode } from './layer-checks.js';
import { NAME_MAX, derivedNames, maxLayerNameLength, tooLong, type NamePart, type NameParts } from './limits.js';
import type { SetFacts } from './set-checks.js';

/** Orders layers parents-first; reports unknown parents and cycles. */
export function checkGraph(layers: Map<string, GraphNode>, folders: string[], issues: ConfigIssue[]): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const reportedCycles = new Set<string>();
  const visit = (name: string, trail: string[]): void => {
    const st = state.get(name);
    if (st === 'done') return;
    const layer = layers.get(name)!;
    if (st === 'visiting') {
      const cycle = [...trail.slice(trail.indexOf(name)), name];
      const id = [...cycle].sort().join(',');
      if (!reportedCycles.has(id)) {
        reportedCycles.add(id);
        issues.push({ file: layer.file, path: '.parent', line: layer.parentLine, message: `layers form a cycle: ${cycle.join(' -> ')}` });
      }
      return;
    }
    state.set(name, 'visiting');
    if (layer.parent !== undefined) {
      if (!layers.has(layer.parent)) {
        // A parent whose own definition does not read has been reported already.
        if (!folders.includes(layer.parent))
          issues.push({
            file: layer.file,
            path: '.parent',
            line: layer.parentLine,
            message: `unknown parent layer ${quote(layer.parent)} (layers in this set: ${folders.join(', ')})`,
          });
      } else {
        visit(layer.parent, [...trail, name]);
      }
    }
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of [...layers.keys()].sort()) visit(name, []);
  return order;
}

/** What set.yaml says of the set's layers, checked against the layer folders there are. */
export function checkSetAgainstLayers(
  dir: string,
  layerDirs: string[],
  facts: SetFacts,
  flatten: [string, number][],
  baseKinds: Map<string, BaseKind>,
  setIssues: FileIssues | undefined,
  issues: ConfigIssue[],
): void {
  if (setIssues) {
    for (const [l, i] of flatten) if (!layerDirs.includes(l)) setIssues.add(['flatten', i], `${quote(l)} is not a layer of this set (layers: ${layerDirs.join(', ')})`);
  }
  // What a build needs from set.yaml, asked for now rather than once the build has started.
  const mmdebstrapBases = [...baseKinds].filter(([, k]) => k === 'mmdebstrap').map(([l]) => l);
  if (setIssues && facts.family === 'debian' && facts.mirrorMissing && mmdebstrapBases.length > 0) {
    setIssues.add(['distro'], `missing key 'mirror' (the Debian mirror mmdebstrap installs from, e.g. http://deb.debian.org/debian), needed by base layer ${quote(mmdebstrapBases[0]!)}`);
  }
  for (const l of facts.flatten) {
    if (layerDirs.includes(l) && layerDirs.includes(`${l}-flat`)) {
      issues.push({
        file: path.join(dir, `${l}-flat`),
        path: '',
        message: `the layer name ${quote(`${l}-flat`)} is taken by the flattened variant of layer ${quote(l)} (set.yaml flattens it): their packages and image files would collide`,
      });
    }
  }
}

/**
 * Every file name each layer becomes must fit (limits.ts). A name too long even with a
 * one-character layer name is the set's doing: reported once, at the longest of the set's parts in
 * it; otherwise at the layer, with the length its name can have.
 */
export function checkNameLengths(
  setName: string,
  dir: string,
  layerNames: string[],
  facts: SetFacts,
  baseKinds: Map<string, BaseKind>,
  setIssues: FileIssues | undefined,
  issues: ConfigIssue[],
): void {
  const blamed = new Set<NamePart>();
  for (const layer of layerNames) {
    const parts: NameParts = { set: setName, layer, prefix: facts.prefix, version: facts.version, flattened: facts.flatten.includes(layer), base: baseKinds.get(layer) };
    const long = tooLong(parts);
    if (!long) continue;
    const all = derivedNames(parts);
    const withShortLayer = derivedNames({ ...parts, layer: 'x' })[all.findIndex((d) => d.name === long.name)]!;
    const made = `makes the ${long.what} ${quoteMiddle(long.name)} ${long.bytes} bytes long; at most ${NAME_MAX}`;
    if (withShortLayer.bytes <= NAME_MAX) {
      issues.push({ file: path.join(dir, layer), path: '', message: `the layer name ${quote(layer)} ${made}: in this set a layer name can have at most ${maxLayerNameLength(parts)} characters` });
      continue;
    }
    const values: Record<Exclude<NamePart, 'layer'>, string | undefined> = { set: setName, prefix: facts.prefix, version: facts.version };
    const part = long.parts
      .filter((x): x is Exclude<NamePart, 'layer'> => x !== 'layer')
      .sort((a, b) => (values[b]?.length ?? 0) - (values[a]?.length ?? 0))[0]!;
    if (blamed.has(part)) continue;
    blamed.add(part);
    const v = values[part]!;
    if (part === 'set') issues.push({ file: dir, path: '', message: `the set name ${quote(v)} ${made}` });
    else setIssues?.add(part === 'prefix' ? ['package', 'prefix'] : ['distro', 'version'], `${quote(v)} ${made}`);
  }
}
