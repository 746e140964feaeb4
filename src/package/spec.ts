// The spec view model: every field the template prints, computed here (the template has no
// logic). Values that come from users are escaped for rpm: '%' would start a macro, and a newline
// would start a new tag or section.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { LayerDef, SetDef } from '../definitions/types.js';
import { vr } from '../records/build.js';
import { FLAT_SUFFIX, flatImageFileName, packageListFileName, packageName, sshKeyFileName, stableImageName, stableKeyName, stablePackageListName, unqualifiedName } from '../definitions/naming.js';
import type { BuildRecord } from '../records/build.js';

/**
 * zstd level 6 on all cores with a 128 MiB window (long-distance matching finds the repeats a disk
 * image has far apart; 2^27 is also the largest window a zstd decoder accepts without being told
 * to). Measured on the upgrade layer (276 MB): 2.7 s and 1.20x the size of xz -9 (74 s). For
 * size-critical releases use w7T0.xzdio: 1.03x xz -9's size in 45 s. See scripts/bench/payload.mjs.
 */
export const DEFAULT_PAYLOAD = 'w6T0L27.zstdio';
export const PROJECT_URL = 'https://github.com/oVirt/ost-images';

export interface SpecView {
  set: string;
  layer: string;
  name: string;
  version: string;
  release: string;
  summary: string;
  description: string;
  license: string;
  url: string;
  payload: string;
  provides: string[];
  requires: string[];
  dirs: string[];
  files: { path: string; mode: string }[];
  names: StableNames;
}

/**
 * What the package's scriptlets need to keep the stable names of its layer: the install directory
 * (where the names sit beside the builds), the file-name prefix of this layer's builds, this build's
 * version-release, and one entry per stable name with the build-file suffix it points at. The Lua
 * code that uses them is fixed text in the template.
 */
export interface StableNames {
  dir: string;
  prefix: string;
  selfVr: string;
  links: { name: string; suffix: string }[];
}

/** A string as a Lua string literal (the values are validated names; this keeps them inert anyway). */
function luaString(s: string): string {
  // '%' doubled: rpm expands macros in scriptlet bodies too.
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, '\\n').replace(/%/g, '%%')}"`;
}

/**
 * The stable names of a layer build (`debian12-engine-installed.qcow2` and `-pkglist.txt`), pointing
 * at `debian12-engine-installed-<V>-<R>.qcow2` / `.packages` in the same directory.
 * Strings come quoted for Lua: the template prints them as they are.
 */
export function stableNames(set: SetDef, label: string, rec: BuildRecord): StableNames {
  return {
    dir: luaString(set.package.installDir),
    prefix: luaString(`${set.name}-${label}-`),
    selfVr: luaString(vr(rec)),
    links: [
      { name: luaString(stableImageName(set.name, label)), suffix: luaString('.qcow2') },
      { name: luaString(stablePackageListName(set.name, label)), suffix: luaString('.packages') },
    ],
  };
}

/**
 * The set's root key pair under its stable names, beside the stable image names. Every base (and
 * flat) package ships the same bytes there: rpm lets identical files belong to several installed
 * packages, and removes them with the last one.
 */
function stableKeyFiles(set: SetDef, privateSource: string, publicSource: string): PackagedFile[] {
  const dir = set.package.installDir;
  return [
    { path: path.posix.join(dir, stableKeyName(set.name)), source: privateSource, mode: 0o600 },
    { path: path.posix.join(dir, `${stableKeyName(set.name)}.pub`), source: publicSource, mode: 0o644 },
  ];
}

/** One line of spec text from user text: whitespace folded, '%' escaped. */
export function rpmText(text: string): string {
  return text.replace(/\s+/g, ' ').trim().replace(/%/g, '%%');
}

export interface PackagedFile {
  /** Absolute path on the installing machine. */
  path: string;
  /** File in the store to hard-link there. */
  source: string;
  mode: number;
}

/** The build record shipped beside the image: `engine-installed-12-R.qcow2` -> `...-12-R.build.json`. */
export function recordFileName(rec: BuildRecord): string {
  return rec.image.replace(/\.qcow2$/, '.build.json');
}

/**
 * What goes into a layer's package: the image, its build record (key, input manifest, parent
 * build: what a builder needs to reuse the package as a cache hit, and what a consumer reads to
 * know what it got), and for base layers the root key pair.
 */
export function packagedFiles(set: SetDef, rec: BuildRecord, imagesDir: string, recordSource?: string): PackagedFile[] {
  const dir = set.package.installDir;
  const files: PackagedFile[] = [{ path: path.posix.join(dir, rec.image), source: path.join(imagesDir, rec.image), mode: 0o444 }];
  if (recordSource) files.push({ path: path.posix.join(dir, recordFileName(rec)), source: recordSource, mode: 0o444 });
  // What the layer changed, for whoever installs it (ost-images diff reads the same files).
  if (rec.packages) {
    for (const f of [rec.packages.list, rec.packages.diff]) files.push({ path: path.posix.join(dir, f), source: path.join(imagesDir, f), mode: 0o444 });
  }
  if (rec.sshKey) {
    files.push({ path: path.posix.join(dir, rec.sshKey.private), source: path.join(imagesDir, rec.sshKey.private), mode: 0o600 });
    files.push({ path: path.posix.join(dir, rec.sshKey.public), source: path.join(imagesDir, rec.sshKey.public), mode: 0o644 });
    files.push(...stableKeyFiles(set, path.join(imagesDir, rec.sshKey.private), path.join(imagesDir, rec.sshKey.public)));
  }
  return files;
}

export function specView(set: SetDef, layer: LayerDef, rec: BuildRecord, files: PackagedFile[], payload: string): SpecView {
  const provides = [`ost-images-layer(${set.name}/${layer.name}) = ${vr(rec)}`];
  // The input key, so a builder can find a published build of exactly these inputs.
  if (rec.key) provides.push(`ost-images-key(${rec.key})`);
  // The identity of the set's root key a base was made with: a builder with no key of its own for
  // the set plans against it and fetches this base (root-key.ts) instead of making a new key.
  const rootKey = rec.manifest?.rootKey;
  if (layer.base && rootKey && /^[0-9a-f]{64}$/.test(rootKey)) provides.push(`ost-images-root-key(${set.name}) = ${rootKey}`);
  if (set.package.default) provides.unshift(`${unqualifiedName(set, layer.name)} = ${vr(rec)}`);
  // Install-only (dnf's default installonlypkgs include this provide): `dnf upgrade` installs a new
  // build beside the old one instead of replacing it, and since every file name carries the build,
  // an older chain stays on disk, intact, for the VMs whose overlays it backs.
  provides.push('installonlypkg(vm)');
  const requires = rec.parent ? [`${packageName(set, rec.parent.layer)} = ${vr(rec.parent)}`] : [];
  const chain = rec.parent ? ` on top of ${rec.parent.layer} ${vr(rec.parent)} (${rec.parent.image})` : '';
  return {
    set: set.name,
    layer: layer.name,
    name: packageName(set, layer.name),
    version: rec.version,
    release: rec.release,
    summary: rpmText(`${set.distro.name} ${set.distro.version} ${layer.name} layer image: ${layer.description}`),
    description: rpmText(
      `${layer.description}. A qcow2 layer of the ${set.name} image set (${set.description})${chain}. ` +
        `Installed read-only under ${set.package.installDir}; a layer's backing file is named relative to it, ` +
        `so the installed chain is valid as it is.`,
    ),
    license: rpmText(set.package.license),
    url: PROJECT_URL,
    payload,
    provides,
    requires,
    dirs: [set.package.installDir],
    files: files.map((f) => ({ path: f.path, mode: f.mode.toString(8).padStart(4, '0') })),
    names: stableNames(set, layer.name, rec),
  };
}

/** The flattened variant's files: the standalone image, the layer's package list and the chain's root key pair. */
export function flatPackagedFiles(set: SetDef, rec: BuildRecord, imagesDir: string): PackagedFile[] {
  const dir = set.package.installDir;
  const image = flatImageFileName(set.name, rec.layer, rec);
  const key = sshKeyFileName(set.name, `${rec.layer}${FLAT_SUFFIX}`, rec);
  const files: PackagedFile[] = [{ path: path.posix.join(dir, image), source: path.join(imagesDir, image), mode: 0o444 }];
  // The flat image holds the same guest as the layer build: its package list is the layer's, shipped
  // under the flat name so the flat variant's stable pkglist name has a target of its own.
  if (rec.packages) {
    const flatList = packageListFileName(set.name, `${rec.layer}${FLAT_SUFFIX}`, rec);
    files.push({ path: path.posix.join(dir, flatList), source: path.join(imagesDir, rec.packages.list), mode: 0o444 });
  }
  if (existsSync(path.join(imagesDir, key))) {
    files.push({ path: path.posix.join(dir, key), source: path.join(imagesDir, key), mode: 0o600 });
    files.push({ path: path.posix.join(dir, `${key}.pub`), source: path.join(imagesDir, `${key}.pub`), mode: 0o644 });
    files.push(...stableKeyFiles(set, path.join(imagesDir, key), path.join(imagesDir, `${key}.pub`)));
  }
  return files;
}

/**
 * The flattened variant's package: `<name>-flat`, same version-release as the layer build, no
 * Requires (the image stands alone), install-only like every layer package.
 */
export function flatSpecView(set: SetDef, layer: LayerDef, rec: BuildRecord, files: PackagedFile[], payload: string): SpecView {
  const flatName = `${layer.name}${FLAT_SUFFIX}`;
  const provides = [`ost-images-flat(${set.name}/${layer.name}) = ${vr(rec)}`, 'installonlypkg(vm)'];
  if (set.package.default) provides.unshift(`${unqualifiedName(set, flatName)} = ${vr(rec)}`);
  return {
    set: set.name,
    layer: flatName,
    name: packageName(set, flatName),
    version: rec.version,
    release: rec.release,
    summary: rpmText(`${set.distro.name} ${set.distro.version} ${layer.name} image, flattened: ${layer.description}`),
    description: rpmText(
      `${layer.description}. The ${layer.name} layer of the ${set.name} image set (${set.description}) with its whole backing ` +
        `chain in one standalone qcow2, for consumers who prefer one file to a chain. Installed read-only under ${set.package.installDir}.`,
    ),
    license: rpmText(set.package.license),
    url: PROJECT_URL,
    payload,
    provides,
    requires: [],
    dirs: [set.package.installDir],
    files: files.map((f) => ({ path: f.path, mode: f.mode.toString(8).padStart(4, '0') })),
    names: stableNames(set, flatName, rec),
  };
}
