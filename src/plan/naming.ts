// How layers are named as packages, files and builds. Pure; the spec view model, the build and the
// publish stage all call these so the names cannot drift apart.
//
// Version-release scheme: Version is the set's distribution version ("12"); Release is the UTC
// time the layer build started, YYYYMMDDHHMMSS ("20261122023500"), so newer builds sort higher in
// rpm's version comparison and every build of a layer has its own exact NEVR that children pin.
import type { SetDef } from '../definitions/types.js';

/** Set-qualified package name: unique across every set a repository may hold. */
export function packageName(set: SetDef, layer: string): string {
  return `${set.package.prefix}-${set.name}-${layer}`;
}

/** The short name a repository's default set provides: `dnf install ost-images-engine-installed`. */
export function unqualifiedName(set: SetDef, layer: string): string {
  return `${set.package.prefix}-${layer}`;
}

export interface BuildId {
  version: string;
  release: string;
}

export function vr(b: BuildId): string {
  return `${b.version}-${b.release}`;
}

/**
 * Image files are build-qualified (`upgrade-12-20261122023500.qcow2`): a child's relative backing
 * name then names the exact parent build it was made on, and builds of one layer can sit side by
 * side in one directory without one replacing the bytes under another's children.
 */
export function imageFileName(layer: string, b: BuildId): string {
  return `${layer}-${vr(b)}.qcow2`;
}

/** The root SSH key pair made with a base build and shipped in its package. */
export function sshKeyFileName(layer: string, b: BuildId): string {
  return `${layer}-${vr(b)}.id_ed25519`;
}

/** The flattened variant of a layer build: its whole chain in one standalone qcow2, own package. */
export const FLAT_SUFFIX = '-flat';

export function flatImageFileName(layer: string, b: BuildId): string {
  return imageFileName(`${layer}${FLAT_SUFFIX}`, b);
}

/** The guest's installed packages after the layer, and their difference from the parent's. */
export function packageListFileName(layer: string, b: BuildId): string {
  return `${layer}-${vr(b)}.packages`;
}

export function packageDiffFileName(layer: string, b: BuildId): string {
  return `${layer}-${vr(b)}.package-diff.json`;
}

export function releaseStamp(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** NVR-style file name rpmbuild gives a noarch package. */
export function rpmFileName(set: SetDef, layer: string, b: BuildId): string {
  return `${packageName(set, layer)}-${vr(b)}.noarch.rpm`;
}
