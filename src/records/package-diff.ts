// What a layer changed in the guest's packages, against its parent's list: written beside the
// image by the build (builder/packages.ts), shipped in its package, shown by the nightly report,
// the status page and `ost-images diff`.

export interface PackageDiff {
  schema: 1;
  /** Set when the parent's list was known; a base layer's diff is everything added. */
  parent?: string;
  added: { name: string; version: string }[];
  removed: { name: string; version: string }[];
  upgraded: { name: string; from: string; to: string }[];
  downgraded: { name: string; from: string; to: string }[];
  /** Packages present in both with the same version. */
  unchanged: number;
  /** The layer has install/upgrade steps, yet no package changed: probably a mistake. */
  flagged?: string;
}
