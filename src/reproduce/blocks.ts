// How much of two builds' overlays differs at the block level: the guest's 4 KiB blocks that
// either overlay holds (qemu-img map, depth 0), read through each whole chain and compared. For
// layers written through a mounted file system (every layer above a base) the file tree is the
// guarantee; this measures what the kernel's allocator, journal and inode times leave different
// (docs/reproducible.md). Also the bytes two qcow2 files differ in.
import { closeSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { checkInterrupted } from '../core/interrupt.js';
import { withScope } from '../core/scope.js';
import * as qemuImg from '../tools/qemu-img.js';

const BLOCK = 4096;
const CHUNK = 1024 * 1024;

/** The guest ranges [start, end) an overlay holds itself (data, or zeros it records), merged. */
export function ownRanges(extents: qemuImg.MapExtent[], kind: 'present' | 'zero' = 'present'): [number, number][] {
  const own = extents.filter((e) => e.depth === 0 && e.present && (kind === 'present' || (e.zero && !e.data))).map((e) => [e.start, e.start + e.length] as [number, number]);
  return mergeRanges(own);
}

/** Sorted, with overlapping and touching ranges joined. Pure. */
export function mergeRanges(ranges: [number, number][]): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** Parts of merged ranges `a` that are not in merged ranges `b`. Pure. */
export function subtractRanges(a: [number, number][], b: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  let j = 0;
  for (const [s0, e] of a) {
    let s = s0;
    while (j < b.length && b[j]![1] <= s) j++;
    for (let k = j; k < b.length && b[k]![0] < e; k++) {
      if (b[k]![0] > s) out.push([s, b[k]![0]]);
      s = Math.max(s, b[k]![1]);
    }
    if (s < e) out.push([s, e]);
  }
  return out;
}

/** Where both merged range lists overlap. Pure. */
export function intersectRanges(a: [number, number][], b: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const s = Math.max(a[i]![0], b[j]![0]);
    const e = Math.min(a[i]![1], b[j]![1]);
    if (s < e) out.push([s, e]);
    if (a[i]![1] < b[j]![1]) i++;
    else j++;
  }
  return out;
}

export interface BlockDiff {
  /**
   * 4 KiB guest blocks either overlay writes: holds data there, or zeros the other does not
   * (both recording zeros is the same content, and is most of a trimmed disk: not counted).
   */
  blocks: number;
  /** Of those, the ones whose content differs between the two chains. */
  differing: number;
}

/**
 * Reads both chains over the blocks either overlay holds: each whole chain written out as a sparse
 * raw file by qemu-img (native speed; a FUSE export read sequentially managed about 10 MB/s here),
 * both removed afterwards.
 */
export async function overlayBlockDiff(a: string, b: string, work: string): Promise<BlockDiff> {
  const [ma, mb] = [await qemuImg.map(a), await qemuImg.map(b)];
  const present = mergeRanges([...ownRanges(ma), ...ownRanges(mb)]);
  const ranges = subtractRanges(present, intersectRanges(ownRanges(ma, 'zero'), ownRanges(mb, 'zero')));
  return withScope(async (scope) => {
    const raws: string[] = [];
    for (const [i, image] of [a, b].entries()) {
      const raw = path.join(work, `blocks-${process.pid}-${i}.raw`);
      scope.defer(`raw copy ${raw}`, () => rmSync(raw, { force: true }));
      await qemuImg.toRaw(image, raw);
      raws.push(raw);
    }
    const fds = raws.map((r) => openSync(r, 'r'));
    scope.defer('block readers', () => fds.forEach((fd) => closeSync(fd)));
    const bufs = [Buffer.alloc(CHUNK), Buffer.alloc(CHUNK)];
    let blocks = 0;
    let differing = 0;
    for (const [start, end] of ranges) {
      for (let at = start; at < end; at += CHUNK) {
        const n = Math.min(CHUNK, end - at);
        for (const i of [0, 1]) readSync(fds[i]!, bufs[i]!, 0, n, at);
        for (let off = 0; off < n; off += BLOCK) {
          const len = Math.min(BLOCK, n - off);
          const same = bufs[0]!.compare(bufs[1]!, off, off + len, off, off + len) === 0;
          // Zeros on both sides (one recorded them, the other reads them from below) say nothing.
          if (same && isZero(bufs[0]!, off, off + len)) continue;
          blocks++;
          if (!same) differing++;
        }
        checkInterrupted();
      }
    }
    return { blocks, differing };
  });
}

function isZero(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Bytes at which two files differ (the shorter one read as zeros past its end). */
export function differingBytes(a: string, b: string): number {
  const size = Math.max(statSync(a).size, statSync(b).size);
  const [fa, fb] = [openSync(a, 'r'), openSync(b, 'r')];
  const [ba, bb] = [Buffer.alloc(CHUNK), Buffer.alloc(CHUNK)];
  let n = 0;
  try {
    for (let at = 0; at < size; at += CHUNK) {
      ba.fill(0);
      bb.fill(0);
      readSync(fa, ba, 0, CHUNK, at);
      readSync(fb, bb, 0, CHUNK, at);
      if (ba.equals(bb)) continue;
      for (let i = 0; i < CHUNK; i++) if (ba[i] !== bb[i]) n++;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
  return n;
}
