// qemu-img: creates overlays, reads chains, checks and converts images.
import { run } from './run.js';

/**
 * A new qcow2: standalone with `size`, or an overlay on `backing`. The backing name is written as
 * given and must be relative to the overlay's directory (`-F qcow2` always: probing a backing
 * file's format is a security hole and qemu-img warns about it).
 */
export function createArgs(file: string, opts: { size?: number; backing?: string }): string[] {
  const args = ['create', '-q', '-f', 'qcow2'];
  if (opts.backing !== undefined) args.push('-b', opts.backing, '-F', 'qcow2');
  args.push(file);
  if (opts.size !== undefined) args.push(String(opts.size));
  return args;
}

/**
 * `shared`: read an image a running QEMU has open for writing (-U, --force-share). Without it
 * qemu-img refuses a running VM's overlay ("Failed to get shared 'write' lock"); the answer may be
 * a moment old, which is fine for reading its backing chain.
 */
export function infoArgs(file: string, chain: boolean, shared = false): string[] {
  return ['info', '--output=json', ...(chain ? ['--backing-chain'] : []), ...(shared ? ['-U'] : []), '-f', 'qcow2', file];
}

export function checkArgs(file: string): string[] {
  return ['check', '-q', '-f', 'qcow2', file];
}

/**
 * Rewrites an image densely. With `backing`, only clusters that differ from the backing chain are
 * written (-B), and the result names the same backing file.
 */
export function compactArgs(src: string, dest: string, backing?: string): string[] {
  return ['convert', '-q', '-f', 'qcow2', '-O', 'qcow2', ...(backing !== undefined ? ['-B', backing, '-F', 'qcow2'] : []), src, dest];
}

export interface ImageInfo {
  filename: string;
  format: string;
  'virtual-size': number;
  'actual-size': number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
}

export async function create(file: string, opts: { size?: number; backing?: string }): Promise<void> {
  await run('qemu-img', createArgs(file, opts));
}

export async function info(file: string): Promise<ImageInfo> {
  return JSON.parse((await run('qemu-img', infoArgs(file, false))).stdout) as ImageInfo;
}

/** Every image of the chain, top first; fails if any backing file cannot be opened. */
export async function chain(file: string, opts: { shared?: boolean } = {}): Promise<ImageInfo[]> {
  return JSON.parse((await run('qemu-img', infoArgs(file, true, opts.shared))).stdout) as ImageInfo[];
}

export async function check(file: string): Promise<void> {
  await run('qemu-img', checkArgs(file));
}

/** A downloaded image (qcow2 or raw; the format is stated, never probed) as a new qcow2. */
export function convertToArgs(src: string, format: 'qcow2' | 'raw', dest: string): string[] {
  return ['convert', '-q', '-f', format, '-O', 'qcow2', src, dest];
}

export async function convertTo(src: string, format: 'qcow2' | 'raw', dest: string): Promise<void> {
  await run('qemu-img', convertToArgs(src, format, dest));
}

export async function resize(file: string, bytes: number): Promise<void> {
  await run('qemu-img', ['resize', '-q', '-f', 'qcow2', file, String(bytes)]);
}

export async function compact(src: string, dest: string, backing?: string): Promise<void> {
  await run('qemu-img', compactArgs(src, dest, backing));
}

/** One extent of an image's guest address space, as `qemu-img map` reports it. */
export interface MapExtent {
  start: number;
  length: number;
  /** 0: in the image itself; n: in its n-th backing file. */
  depth: number;
  present: boolean;
  zero: boolean;
  data: boolean;
}

export function mapArgs(file: string): string[] {
  return ['map', '--output=json', '-f', 'qcow2', file];
}

/** Where each part of the guest's disk comes from, through the whole backing chain. */
export async function map(file: string): Promise<MapExtent[]> {
  return JSON.parse((await run('qemu-img', mapArgs(file), { timeoutMs: 300_000 })).stdout) as MapExtent[];
}

export function toRawArgs(src: string, dest: string): string[] {
  return ['convert', '-q', '-f', 'qcow2', '-O', 'raw', src, dest];
}

/** The guest's whole disk, through the backing chain, as a sparse raw file. */
export async function toRaw(src: string, dest: string): Promise<void> {
  await run('qemu-img', toRawArgs(src, dest));
}
