// How layers are named as packages, files and builds. Pure; the spec view model, the build and the
// publish stage all call these so the names cannot drift apart.
//
// Version-release scheme: Version is the set's distribution version ("12"); Release is the UTC
// time the layer build started, YYYYMMDDHHMMSS ("20261122023500"), so newer builds sort higher in
// rpm's version comparison and every build of a layer has its own exact NEVR that children pin.
import type { SetDef } from './types.js';
import { vr, type BuildId } from '../records/build.js';

/** Set-qualified package name: unique across every set a repository may hold. */
export function packageName(set: SetDef, layer: string): string {
  return `${set.package.prefix}-${set.name}-${layer}`;
}

/** The short name a repository's default set provides: `dnf install ost-images-engine-installed`. */
export function unqualifiedName(set: SetDef, layer: string): string {
  return `${set.package.prefix}-${layer}`;
}



/**
 * Every per-build file is named `<set>-<layer>-<V>-<R>.<ext>`: build-qualified, so a child's
 * relative backing name names the exact parent build it was made on and builds of one layer sit
 * side by side without one replacing the bytes under another's children; set-qualified, so every
 * set's builds and stable names share one directory (`/usr/share/ost-images`). One directory
 * matters: QEMU resolves a relative backing name against the directory of the path it opened, not
 * of a symlink's target, so a stable name (a symlink) only resolves its chain when the builds sit
 * beside it. The system-test framework opens exactly those names.
 */
export function buildStem(set: string, layer: string, b: BuildId): string {
  return `${set}-${layer}-${vr(b)}`;
}

export function imageFileName(set: string, layer: string, b: BuildId): string {
  return `${buildStem(set, layer, b)}.qcow2`;
}

/** The set's root SSH key pair as shipped with a base build (the same pair for every build of the set). */
export function sshKeyFileName(set: string, layer: string, b: BuildId): string {
  return `${buildStem(set, layer, b)}.id_ed25519`;
}

/** The flattened variant of a layer build: its whole chain in one standalone qcow2, own package. */
export const FLAT_SUFFIX = '-flat';

export function flatImageFileName(set: string, layer: string, b: BuildId): string {
  return imageFileName(set, `${layer}${FLAT_SUFFIX}`, b);
}

/** The guest's installed packages after the layer, and their difference from the parent's. */
export function packageListFileName(set: string, layer: string, b: BuildId): string {
  return `${buildStem(set, layer, b)}.packages`;
}

export function packageDiffFileName(set: string, layer: string, b: BuildId): string {
  return `${buildStem(set, layer, b)}.package-diff.json`;
}



/** NVR-style file name rpmbuild gives a noarch package. */
export function rpmFileName(set: SetDef, layer: string, b: BuildId): string {
  return `${packageName(set, layer)}-${vr(b)}.noarch.rpm`;
}

// Stable names: what the system-test framework looks for (a fixed path per set and layer, no build
// in it), beside the builds in the install directory (`/usr/share/ost-images`). The layer packages'
// own scriptlets keep them (see specs/layer.spec.hbs); the key pair is shipped under its stable
// name by every base package, byte-identical across the set's builds.

/** `debian12-engine-installed.qcow2`: a symlink to the newest installed build's image, in the same directory. */
export function stableImageName(set: string, layer: string): string {
  return `${set}-${layer}.qcow2`;
}

/** `debian12-engine-installed-pkglist.txt`: the same build's guest package list. */
export function stablePackageListName(set: string, layer: string): string {
  return `${set}-${layer}-pkglist.txt`;
}

/** `debian12_id_rsa` (the framework's name; the key itself is ed25519, which ssh reads from the file). */
export function stableKeyName(set: string): string {
  return `${set}_id_rsa`;
}
