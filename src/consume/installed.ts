// The installed tree of a test machine (`$OST_IMAGES_DIR`, default /usr/share/ost-images), read as
// it is: the builds (regular .qcow2 files, each with its `.build.json` record beside it when the
// package ships one), the stable names (`<set>-<layer>.qcow2`, symlinks the packages' scriptlets
// keep on the newest build) and each set's root key (`<set>_id_rsa`). Read-only: dnf owns the tree.
import { existsSync, lstatSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../core/errors.js';
import { log } from '../core/log.js';
import { compareEvr } from '../core/rpmdeps.js';
import type { BuildRecord } from '../records/build.js';

export const DEFAULT_IMAGES_DIR = '/usr/share/ost-images';

export function defaultImagesDir(): string {
  return process.env.OST_IMAGES_DIR || DEFAULT_IMAGES_DIR;
}

/** Where `ost-images vm` keeps overlays and console logs (vm.ts); here, so naming it loads no VM code. */
export const DEFAULT_VM_DIR = '/var/lib/ost-images/vms';

export function defaultVmDir(): string {
  return process.env.OST_IMAGES_VM_DIR || DEFAULT_VM_DIR;
}

export interface InstalledBuild {
  set: string;
  layer: string;
  version: string;
  release: string;
  /** The build file, absolute and with every symlink resolved. */
  file: string;
  /** Its build record, when one is installed beside it. */
  record?: BuildRecord;
}

export interface InstalledLayer {
  layer: string;
  /** `<dir>/<set>-<layer>.qcow2` and the build file it resolves to (null: dangling). */
  stable?: { path: string; target: string | null };
  /** Newest first, by rpm version comparison of version-release. */
  builds: InstalledBuild[];
}

export interface InstalledSet {
  set: string;
  /** `<dir>/<set>_id_rsa`, when installed. */
  key?: string;
  layers: InstalledLayer[];
}

export const vrOf = (b: { version: string; release: string }): string => `${b.version}-${b.release}`;

/** Newest first by rpm's comparison of version-release (what dnf calls newer). */
export const newestBuildFirst = (a: { version: string; release: string }, b: { version: string; release: string }): number => compareEvr(vrOf(b), vrOf(a));

const KEY_SUFFIX = '_id_rsa';

function readRecord(file: string): BuildRecord | undefined {
  const rec = file.replace(/\.qcow2$/, '.build.json');
  if (rec === file || !existsSync(rec)) return undefined;
  try {
    return JSON.parse(readFileSync(rec, 'utf8')) as BuildRecord;
  } catch (err) {
    log.warn(`ignoring unreadable build record ${rec}: ${(err as Error).message}`);
    return undefined;
  }
}

/** `<layer>-<version>-<release>.qcow2` (neither version nor release holds a '-'). */
function parseLayerFile(rest: string): { layer: string; version: string; release: string } | undefined {
  const m = /^(.+)-([^-]+)-([^-]+)\.qcow2$/.exec(rest);
  return m ? { layer: m[1]!, version: m[2]!, release: m[3]! } : undefined;
}

const isFile = (p: string): boolean => {
  try {
    return lstatSync(p).isFile();
  } catch {
    return false;
  }
};
const isLink = (p: string): boolean => {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
};
const isDir = (p: string): boolean => {
  try {
    return lstatSync(p).isDirectory();
  } catch {
    return false;
  }
};
const realOrNull = (p: string): string | null => {
  try {
    return realpathSync(p);
  } catch {
    return null;
  }
};

/**
 * Every set, layer and build in `dir`. Builds sit either in `dir` itself as
 * `<set>-<layer>-<V>-<R>.qcow2` or in a folder per set as `<set>/<layer>-<V>-<R>.qcow2`; a build
 * record beside a file names its set and layer outright, otherwise the name is read against the
 * sets the tree holds (from their key files and folders).
 */
export function scanInstalled(dirArg: string): InstalledSet[] {
  const dir = path.resolve(dirArg);
  if (!isDir(dir)) return [];
  const top = readdirSync(dir).sort();
  const sets = new Set<string>();
  for (const f of top) {
    if (f.endsWith(KEY_SUFFIX) && isFile(path.join(dir, f))) sets.add(f.slice(0, -KEY_SUFFIX.length));
    else if (isDir(path.join(dir, f)) && !f.startsWith('.')) sets.add(f);
  }
  const builds: InstalledBuild[] = [];
  const unplaced: string[] = [];
  const consider = (file: string, folderSet?: string): void => {
    const record = readRecord(file);
    const real = realpathSync(file);
    if (record) {
      sets.add(record.set);
      builds.push({ set: record.set, layer: record.layer, version: record.version, release: record.release, file: real, record });
      return;
    }
    const name = path.basename(file);
    const candidates = folderSet !== undefined ? [folderSet] : [...sets].filter((s) => name.startsWith(`${s}-`)).sort((a, b) => b.length - a.length);
    for (const set of candidates) {
      const parsed = parseLayerFile(folderSet !== undefined ? name : name.slice(set.length + 1));
      if (parsed) {
        builds.push({ set, ...parsed, file: real });
        return;
      }
    }
    unplaced.push(file);
  };
  for (const f of top) {
    const p = path.join(dir, f);
    if (f.endsWith('.qcow2') && !f.startsWith('.') && isFile(p)) consider(p);
  }
  for (const f of top) {
    const sub = path.join(dir, f);
    if (!isDir(sub) || f.startsWith('.')) continue;
    for (const g of readdirSync(sub).sort()) if (g.endsWith('.qcow2') && !g.startsWith('.') && isFile(path.join(sub, g))) consider(path.join(sub, g), f);
  }
  if (unplaced.length > 0) log.debug(`images in ${dir} of no known set: ${unplaced.join(' ')}`);

  const out: InstalledSet[] = [];
  for (const set of [...sets].sort()) {
    const layers = new Map<string, InstalledLayer>();
    const layerOf = (layer: string): InstalledLayer => {
      if (!layers.has(layer)) layers.set(layer, { layer, builds: [] });
      return layers.get(layer)!;
    };
    for (const b of builds.filter((x) => x.set === set)) layerOf(b.layer).builds.push(b);
    // Stable names: a symlink `<set>-<layer>.qcow2`. A longer set name sharing the prefix
    // (debian12 / debian12-lts) owns its own names.
    const longer = [...sets].filter((s) => s !== set && s.startsWith(`${set}-`));
    for (const f of top) {
      if (!f.startsWith(`${set}-`) || !f.endsWith('.qcow2') || longer.some((s) => f.startsWith(`${s}-`))) continue;
      const p = path.join(dir, f);
      if (!isLink(p)) continue;
      const layer = f.slice(set.length + 1, -'.qcow2'.length);
      layerOf(layer).stable = { path: p, target: realOrNull(p) };
    }
    for (const l of layers.values()) l.builds.sort(newestBuildFirst);
    const key = path.join(dir, `${set}${KEY_SUFFIX}`);
    if (layers.size === 0 && !existsSync(key)) continue;
    out.push({ set, key: isFile(key) ? key : undefined, layers: [...layers.values()].sort((a, b) => a.layer.localeCompare(b.layer)) });
  }
  return out;
}

export interface ResolvedImage {
  build: InstalledBuild;
  /** The stable name the build was found by. */
  stable: string;
  /** The set's root key, when the tree has one. */
  key?: string;
}

/**
 * The build a layer's stable name points at now, resolved to the build file. Bad input (no such
 * tree, set or layer) is a UsageError naming what is installed.
 */
export function resolveInstalled(dirArg: string, set: string, layer: string): ResolvedImage {
  const dir = path.resolve(dirArg);
  if (!isDir(dir)) throw new UsageError(`no images installed: ${dir} does not exist (set OST_IMAGES_DIR or --images-dir, or install a layer package, e.g. dnf install ost-images-${layer})`);
  const sets = scanInstalled(dir);
  const s = sets.find((x) => x.set === set);
  if (!s) throw new UsageError(`set '${set}' is not installed in ${dir} (installed: ${sets.map((x) => x.set).join(', ') || 'none'})`);
  const l = s.layers.find((x) => x.layer === layer && x.stable);
  const known = s.layers.filter((x) => x.stable).map((x) => x.layer);
  if (!l?.stable) throw new UsageError(`layer '${layer}' of set '${set}' is not installed in ${dir} (installed: ${known.join(', ') || 'none'})`);
  if (!l.stable.target) throw new UsageError(`${l.stable.path} is a dangling link: reinstall the layer's package`);
  const target = l.stable.target;
  const build = l.builds.find((b) => b.file === target);
  if (!build) throw new UsageError(`${l.stable.path} points at ${target}, which is no build of ${set}/${layer}`);
  return { build, stable: l.stable.path, key: s.key };
}
