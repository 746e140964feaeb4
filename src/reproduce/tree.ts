// What a layer's image holds, as a file tree: every path with its type, mode, owner, time, symlink
// target and content digest, read from the image mounted read-only. Two builds of the same inputs
// must give the same tree (docs/reproducible.md); compare.ts says how two trees differ.
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { checkInterrupted } from '../core/interrupt.js';

export type EntryType = 'file' | 'dir' | 'link' | 'char' | 'block' | 'fifo' | 'socket';

export interface TreeEntry {
  type: EntryType;
  /** Permission bits with setuid, setgid and sticky (st_mode & 07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time in nanoseconds, as a decimal string (exact). */
  mtime: string;
  /** Regular files: size and sha256 of the content. */
  size?: number;
  sha256?: string;
  /** Symbolic links: the target as written. */
  target?: string;
  /** Device nodes: major:minor. */
  rdev?: string;
}

/** Guest path -> entry; the root itself is "/". */
export type Tree = Map<string, TreeEntry>;

function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isFIFO(): boolean }): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'link';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Walks a mounted tree without following links or entering other file systems, hashing regular
 * files a few at a time. `onProgress` hears the number of entries read so far now and then.
 */
export async function walkTree(root: string, onProgress?: (entries: number) => void): Promise<Tree> {
  const tree: Tree = new Map();
  const dev = lstatSync(root).dev;
  const files: [string, string][] = [];
  const visit = (host: string, guest: string): void => {
    const st = lstatSync(host, { bigint: true });
    if (guest !== '/' && st.dev !== BigInt(dev)) return;
    const e: TreeEntry = { type: typeOf(st), mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtime: st.mtimeNs.toString() };
    if (e.type === 'link') e.target = readlinkSync(host);
    if (e.type === 'char' || e.type === 'block') e.rdev = `${Number(st.rdev >> 8n) & 0xfff}:${Number((st.rdev & 0xffn) | ((st.rdev >> 12n) & ~0xffn))}`;
    if (e.type === 'file') {
      e.size = Number(st.size);
      files.push([guest, host]);
    }
    tree.set(guest, e);
    if (tree.size % 2048 === 0) {
      checkInterrupted();
      onProgress?.(tree.size);
    }
    if (e.type === 'dir') for (const name of readdirSync(host).sort()) visit(path.join(host, name), guest === '/' ? `/${name}` : `${guest}/${name}`);
  };
  visit(root, '/');
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const [guest, host] = files[next++]!;
      tree.get(guest)!.sha256 = await sha256Of(host);
      if (next % 512 === 0) checkInterrupted();
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return tree;
}
