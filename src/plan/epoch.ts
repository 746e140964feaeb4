// The time and the seeds a layer's image is made with, from its inputs alone: two builds of one
// layer key write the same times and the same "random" identifiers, so they can give the same
// image. Pure.
//
// Time (SOURCE_DATE_EPOCH of reproducible-builds.org): the newest publication date of the upstream
// metadata the layer and its ancestors declare (a Debian Release file's Date), never before the
// set's `source_date` (or, without one, the builder's fixed epoch). It reaches the guest's tools
// (dpkg, initramfs-tools, Python's byte-compiler) as SOURCE_DATE_EPOCH and is what every file
// written during the build is clamped to.
//
// Seeds: the root file system's UUID, its directory-hash seed and the disk's MBR identifier are
// derived from the base layer's key instead of drawn at random; `purpose` keeps them distinct.
import { createHash } from 'node:crypto';
import type { LayerSet } from '../definitions/types.js';

/** The time of a set that names no `source_date` and whose upstreams name no date: 2026-01-01. */
export const BUILDER_EPOCH = Date.UTC(2026, 0, 1) / 1000;

/** The layer and its ancestors, base first. */
function chain(ls: LayerSet, layer: string): string[] {
  const out: string[] = [];
  for (let cur: string | undefined = layer; cur !== undefined; cur = ls.layers.get(cur)?.parent) out.unshift(cur);
  return out;
}

/** SOURCE_DATE_EPOCH of a layer: seconds since the epoch (see the top of this file). */
export function layerEpoch(ls: LayerSet, layer: string, dates: Record<string, number>): number {
  let t = ls.set.sourceDate ?? BUILDER_EPOCH;
  for (const l of chain(ls, layer)) for (const u of ls.layers.get(l)!.upstream) if (dates[u] !== undefined && dates[u]! > t) t = dates[u]!;
  return t;
}

function digest(key: string, purpose: string): Buffer {
  return createHash('sha256').update(`ost-images ${purpose} ${key}`).digest();
}

/** A UUID (version 4 layout, so tools that check the version accept it) derived from the key. */
export function seedUuid(key: string, purpose: string): string {
  const b = digest(key, purpose).subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The identifiers a base build would otherwise draw at random. */
export interface BaseSeeds {
  /** The root file system's UUID (fstab and grub.cfg name it). */
  fsUuid: string;
  /** ext4's directory-hash seed: it orders large directories on disk. */
  hashSeed: string;
  /** The MBR disk identifier (sfdisk label-id), never 0. */
  diskId: string;
}

export function baseSeeds(key: string): BaseSeeds {
  const id = digest(key, 'disk-id').readUInt32BE(0) || 1;
  return { fsUuid: seedUuid(key, 'root-fs-uuid'), hashSeed: seedUuid(key, 'root-fs-hash-seed'), diskId: `0x${id.toString(16).padStart(8, '0')}` };
}
