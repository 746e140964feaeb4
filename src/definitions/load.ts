// Reads layers/<set>/set.yaml and layers/<set>/<layer>/layer.yaml, validates all of it and returns
// a typed LayerSet. Every problem in every file is collected and reported together (ConfigError,
// exit 2); nothing is written while loading.
//
// The work is split by what each step can see:
// - reading (yaml-file.ts) is the only step that can make a file unusable: an unreadable, too
//   large, non-UTF-8 or malformed file is reported and its content is not checked further;
// - each file that reads is checked on its own by the validation kernel (kernel.ts): its schema
//   (schema.ts) and its rules, set.yaml's in set-checks.ts and layer.yaml's in layer-checks.ts. A
//   schema error in one key does not hide a bad URL in another;
// - set.yaml's values reach the layer checks as SetFacts: each one only when set.yaml gives it
//   validly. A layer check that depends on a value set.yaml does not validly give is skipped, or
//   made with a rule that holds for every possible value; defaults are never filled in for a
//   broken set.yaml;
// - then the checks across files (graph-checks.ts): the layer graph, set.yaml against the layer
//   folders, and the names every layer becomes;
// - the typed LayerSet is built only when there is no issue at all.
//
// This module walks the set's folder and puts those together; problems are listed file by file,
// each file's by line (kernel.ts, byFile).
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, type ConfigIssue, UsageError, quote } from '../core/errors.js';
import { onUserPath } from '../input/paths.js';
import { checkGraph, checkNameLengths, checkSetAgainstLayers } from './graph-checks.js';
import { FileIssues, byFile, isObj } from './kernel.js';
import { LAYER_FILE, checkLayer, type BaseKind, type GraphNode } from './layer-checks.js';
import { NAME_MAX } from './limits.js';
import { LAYER_NAME } from './names.js';
import { NO_FACTS, SET_FILE, checkSet } from './set-checks.js';
import type { LayerDef, LayerSet } from './types.js';
import { MAX_FILE_BYTES, formatPath, parseYamlFile } from './yaml-file.js';

export { LAYER_FILE, MAX_FILE_BYTES, SET_FILE, formatPath };
export { MAX_ISSUES_PER_FILE } from './kernel.js';
export { MAX_KERNEL_CMDLINE_BYTES, MAX_TEMPLATE_BYTES } from './layer-checks.js';
export { MAX_IMAGE_BYTES, MIN_IMAGE_BYTES } from './set-checks.js';

/** Why a name cannot be a set name, or undefined. Pure: nothing is read. */
export function setNameProblem(name: string): string | undefined {
  if (!LAYER_NAME.test(name)) return "a set is a folder directly under the layers directory, named with lower-case letters, digits and . _ + - (starting with a letter or digit)";
  if (Buffer.byteLength(name) > NAME_MAX) return `a folder name has at most ${NAME_MAX} bytes`;
  return undefined;
}

/** Loads and validates layers/<setName>. Throws ConfigError with every issue found. */
export function loadLayerSet(layersDir: string, setName: string): LayerSet {
  // Checked as a name before anything is read: `--set ../x` or `--set /etc` must not read a file.
  const nameProblem = setNameProblem(setName);
  if (nameProblem) throw new UsageError(`invalid set name ${quote(setName)}: ${nameProblem}`);
  const issues: ConfigIssue[] = [];
  const dir = path.join(layersDir, setName);
  const setFile = path.join(dir, SET_FILE);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ConfigError([{ file: dir, path: '', message: `no such layer set (sets in ${layersDir}: ${listSets(layersDir).join(', ') || 'none'})` }]);
  }
  const setParsed = parseYamlFile(setFile, issues);
  const { facts, set } = setParsed ? checkSet(setName, dir, setParsed, issues) : { facts: NO_FACTS, set: undefined };

  const layers = new Map<string, LayerDef>();
  const graph = new Map<string, GraphNode>();
  const baseKinds = new Map<string, BaseKind>();
  const entries = readdirSync(dir, { withFileTypes: true });
  // A link in place of a layer folder would make its scripts come from elsewhere.
  const linked = entries.filter((e) => e.isSymbolicLink() && statSync(path.join(dir, e.name), { throwIfNoEntry: false })?.isDirectory()).map((e) => e.name);
  for (const name of linked) {
    issues.push({ file: path.join(dir, name), path: '', message: `${quote(name)} is a link to a folder; a layer folder must be a real folder in the set's folder` });
  }
  const layerDirs = entries.filter((d) => d.isDirectory()).map((d) => d.name).sort();
  for (const name of layerDirs) {
    const layerDir = path.join(dir, name);
    if (!LAYER_NAME.test(name)) {
      issues.push({ file: layerDir, path: '', message: `layer name ${quote(name)} (the folder name) is not valid: use lower-case letters, digits and . _ + - (RPM would reject it in a package name)` });
    }
    const file = path.join(layerDir, LAYER_FILE);
    if (!existsSync(file)) {
      issues.push({ file: layerDir, path: '', message: `layer folder has no ${LAYER_FILE}` });
      continue;
    }
    const parsed = parseYamlFile(file, issues);
    if (!parsed) continue;
    const r = checkLayer(name, layerDir, parsed, setName, facts, issues);
    // The layer graph is checked for every layer that reads, whatever else is wrong with it.
    graph.set(name, r.node);
    if (r.layer) layers.set(name, r.layer);
    if (r.baseKind) baseKinds.set(name, r.baseKind);
  }
  if (layerDirs.length === 0) issues.push({ file: dir, path: '', message: 'the set has no layer folders' });
  // A parent whose folder was reported (a link) is not unknown.
  const order = checkGraph(graph, [...layerDirs, ...linked].sort(), issues);

  const setIssues = setParsed ? new FileIssues(setParsed, issues) : undefined;
  const flatten = setParsed && isObj(setParsed.data) && Array.isArray(setParsed.data.flatten) ? setParsed.data.flatten : [];
  const flattenNamed = flatten.flatMap((l, i): [string, number][] => (typeof l === 'string' ? [[l, i]] : []));
  checkSetAgainstLayers(dir, layerDirs, facts, flattenNamed, baseKinds, setIssues, issues);
  checkNameLengths(setName, dir, layerDirs.filter((l) => LAYER_NAME.test(l)), facts, baseKinds, setIssues, issues);

  if (issues.length > 0 || !set) throw new ConfigError(byFile(issues), `invalid layer set '${setName}'`);
  return { set, layers, order };
}

/** Names of the sets in a layers directory: valid set names with a set.yaml. */
export function listSets(layersDir: string): string[] {
  // A file given as --layers-dir (or a name too long) is bad input, not a failure of the listing.
  if (!onUserPath('--layers-dir', layersDir, () => statSync(layersDir, { throwIfNoEntry: false }))) return [];
  return onUserPath('--layers-dir', layersDir, () => readdirSync(layersDir))
    .filter((d) => setNameProblem(d) === undefined && statSync(path.join(layersDir, d, SET_FILE), { throwIfNoEntry: false })?.isFile())
    .sort();
}
