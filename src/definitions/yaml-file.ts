// Reading one definition file (set.yaml, layer.yaml) into plain data, safely: whatever the bytes,
// the result is data or located issues, in bounded time and memory, never an exception.
//
// The yaml library implements all of YAML 1.2, and some inputs cost it dearly. Measured here
// (yaml 2.9, Node 20, 2 cores) on 1 MiB files: 1 MiB of '[' took 8 s and 860 MiB, 1 MiB of '{' ran
// out of memory, 100 000 keys took 100 s (its duplicate-key check is quadratic), 500 000 '? ' did
// not finish in 2 minutes, and an alias bomb (9 aliases of 9 aliases of ...) expands
// exponentially ("Excessive alias count" escaped as an unexpected failure). A definition file is
// a page of hand-written text (the largest shipped one is under 1 KiB), so the limits below are
// far beyond any real file and keep every step cheap. Each check bounds the cost of the next:
//   1. size: at most MAX_FILE_BYTES, checked before reading, and the read stops there too;
//   2. encoding: UTF-8 (the first bad byte is reported with its offset and line);
//   3. characters: YAML's printable set (no NUL or escape sequences: a binary file stops here);
//   4. syntax tree (the parser's CST, built in linear time): nesting at most MAX_DEPTH levels and
//      at most MAX_ALIASES aliases, before anything recursive runs;
//   5. the document (composed without the quadratic duplicate-key check): one document, keys are
//      plain scalars and unique (checked here in linear time), only the core schema's tags,
//      aliases that name an earlier anchor outside themselves, and at most MAX_VALUES values once
//      aliases are expanded;
//   6. only then plain data (toJS).
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { Composer, LineCounter, Parser, isAlias, isMap, isScalar, isSeq, type CST, type Document, type Node, type YAMLMap } from 'yaml';
import { QUOTE_MAX, quote, type ConfigIssue } from '../core/errors.js';

/** At most 64 KiB per definition file (a definition file is a page of text). */
export const MAX_FILE_BYTES = 64 * 1024;
/** Collections nested at most this deep (the schema needs 5). */
export const MAX_DEPTH = 32;
/** Alias uses (`*name`) per file. */
export const MAX_ALIASES = 100;
/** Values (scalars, lists, mappings) per file, counted with aliases expanded. */
export const MAX_VALUES = 10_000;

const KIB = (n: number): string => `${n / 1024} KiB`;

export type Seg = string | number;

/** `.steps[2].install`: the key path notation used in every message (keys cut and escaped like values). */
export function formatPath(segs: Seg[]): string {
  return segs.map((s) => (typeof s === 'number' ? `[${s}]` : `.${quote(s, '').replace(/ \(\d+ characters\)$/, '')}`)).join('');
}

/** A text file's content, or why it cannot be used (with the line where that is known). */
export type TextRead = { text: string } | { problem: string; line?: number };

/**
 * Reads a text file of at most `maxBytes` bytes as UTF-8. Never blocks on a FIFO or reads a
 * device: only regular files are opened, and non-blocking.
 */
export function readText(file: string, maxBytes: number): TextRead {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) return { problem: `cannot read: not a regular file (${st.isDirectory() ? 'a directory' : 'a device, FIFO or socket'})` };
    size = st.size;
  } catch (err) {
    return { problem: `cannot read: ${(err as Error).message}` };
  }
  const tooBig = (n: number | string): TextRead => ({ problem: `the file is ${n} bytes; at most ${maxBytes} (${KIB(maxBytes)}) are read` });
  if (size > maxBytes) return tooBig(size);
  let bytes: Buffer;
  try {
    const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      // Swapped for something else between stat and open: checked again on what was opened.
      if (!fstatSync(fd).isFile()) return { problem: 'cannot read: not a regular file' };
      const buf = Buffer.alloc(maxBytes + 1);
      let got = 0;
      for (let n = -1; n !== 0 && got < buf.length; got += n) n = readSync(fd, buf, got, buf.length - got, null);
      if (got > maxBytes) return tooBig(`more than ${maxBytes}`);
      bytes = buf.subarray(0, got);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    return { problem: `cannot read: ${(err as Error).message}` };
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    return {
      problem: `not UTF-8 text: byte 0x${bytes[at]!.toString(16).padStart(2, '0')} at offset ${at} is not valid UTF-8 (save the file as UTF-8)`,
      line: lineAtByte(bytes, at),
    };
  }
  return { text };
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    // Lead byte: how many continuation bytes follow, and the smallest code point that needs them
    // (anything smaller is an overlong encoding).
    const n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    if (n === 0) return i;
    let cp = c & [0, 0x1f, 0x0f, 0x07][n]!;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < [0, 0x80, 0x800, 0x10000][n]! || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return b.length;
}

function lineAtByte(b: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (b[i] === 0x0a) line++;
  return line;
}

// YAML 1.2's c-printable complement: C0 controls but tab, LF and CR; DEL; C1 controls but NEL;
// the noncharacters U+FFFE and U+FFFF. (Surrogates cannot survive strict UTF-8 decoding.)
const NOT_PRINTABLE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u0084\u0086-\u009f\ufffe\uffff]/;

export interface Parsed {
  file: string;
  data: unknown;
  /** The line of the value at a key path (of the key itself with `key`), when the file has one there. */
  lineOf(segs: Seg[], key?: boolean): number | undefined;
}

/** Tags of the YAML 1.2 core schema that make plain data (`!!str 12` is a common, harmless one). */
const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'seq', 'map'].map((t) => `tag:yaml.org,2002:${t}`));

/** Parses a definition file; every problem becomes an issue naming the file (and line). */
export function parseYamlFile(file: string, issues: ConfigIssue[]): Parsed | undefined {
  const read = readText(file, MAX_FILE_BYTES);
  if ('problem' in read) {
    issues.push({ file, path: '', line: read.line, message: read.problem });
    return undefined;
  }
  const text = read.text;
  const lc = new LineCounter();
  const lineAt = (offset: number): number => lc.linePos(offset).line;
  const fail = (offset: number | undefined, message: string, segs: Seg[] = []): undefined => {
    issues.push({ file, path: formatPath(segs), line: offset === undefined ? undefined : lineAt(offset), message });
    return undefined;
  };

  const bad = NOT_PRINTABLE.exec(text);
  if (bad) {
    // The line counter is filled by the parser; this file is not parsed, so count here.
    const line = text.slice(0, bad.index).split('\n').length;
    const column = bad.index - text.lastIndexOf('\n', bad.index - 1);
    const code = `U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    issues.push({ file, path: '', line, message: `control character ${code} at column ${column}: a YAML file holds printable text only (is it a binary file?)` });
    return undefined;
  }

  const tokens = [...new Parser(lc.addNewLine).parse(text)];
  if (!checkSyntaxTree(tokens, fail)) return undefined;

  const docs = [...new Composer({ uniqueKeys: false }).compose(tokens, true, text.length)];
  const doc = docs[0] as Document.Parsed;
  if (docs.length > 1) return fail(docs[1]!.range[0], `the file holds ${docs.length} YAML documents ('---'); a definition file is one document`);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) fail(e.pos[0], `YAML syntax: ${cut(e.message.split('\n')[0]!, 200)}`);
    return undefined;
  }
  for (const w of doc.warnings) if (w.code !== 'TAG_RESOLVE_FAILED') fail(w.pos[0], `YAML: ${cut(w.message.split('\n')[0]!, 200)}`);
  if (!checkDocument(doc, fail, lineAt)) return undefined;

  let data: unknown;
  try {
    // Expansion is bounded by checkDocument; yaml's own alias guard would count differently.
    data = doc.toJS({ maxAliasCount: -1 }) ?? {};
  } catch (err) {
    return fail(undefined, `cannot be read as data: ${cut((err as Error).message, 200)}`);
  }
  // Each mapping's keys indexed once: a file with thousands of unknown keys is located in linear time.
  const index = new Map<unknown, Map<string, { key: unknown; value: unknown }>>();
  const pairOf = (map: YAMLMap, k: string): { key: unknown; value: unknown } | undefined => {
    let m = index.get(map);
    if (!m) {
      m = new Map();
      for (const p of map.items) if (isScalar(p.key) && !m.has(String(p.key.value))) m.set(String(p.key.value), p);
      index.set(map, m);
    }
    return m.get(k);
  };
  const lineOf = (segs: Seg[], key = false): number | undefined => {
    let node: unknown = doc.contents;
    for (let i = 0; i < segs.length; i++) {
      if (isAlias(node)) node = node.resolve(doc);
      const last = i === segs.length - 1;
      if (isMap(node)) {
        // For an unknown key, point at the key itself rather than its value.
        const pair = pairOf(node, String(segs[i]));
        node = key && last ? pair?.key : pair?.value;
      } else if (isSeq(node) && typeof segs[i] === 'number') {
        node = node.items[segs[i] as number];
      } else {
        return undefined;
      }
    }
    const range = (node as Node | undefined)?.range;
    return range ? lineAt(range[0]) : undefined;
  };
  return { file, data, lineOf };
}

/** A parser message or a name from the file, made printable and cut (the parser's own text at 200). */
function cut(text: string, max = QUOTE_MAX): string {
  return quote(text, '', max);
}

type Fail = (offset: number | undefined, message: string, segs?: Seg[]) => undefined;

/** Nesting depth and alias count on the concrete syntax tree, iteratively (no recursion to exhaust). */
function checkSyntaxTree(tokens: CST.Token[], fail: Fail): boolean {
  const stack: [CST.Token, number][] = [];
  for (const t of tokens) if (t.type === 'document' && t.value) stack.push([t.value, 0]);
  let aliases = 0;
  while (stack.length > 0) {
    const [t, depth] = stack.pop()!;
    if (t.type === 'alias' && ++aliases > MAX_ALIASES) {
      fail(t.offset, `more than ${MAX_ALIASES} aliases ('*name'); a definition file may use at most ${MAX_ALIASES}`);
      return false;
    }
    if (t.type === 'block-map' || t.type === 'block-seq' || t.type === 'flow-collection') {
      if (depth + 1 > MAX_DEPTH) {
        fail(t.offset, `nested more than ${MAX_DEPTH} levels deep; a definition file may nest at most ${MAX_DEPTH}`);
        return false;
      }
      for (const item of t.items as CST.CollectionItem[]) {
        if (item.key) stack.push([item.key, depth + 1]);
        if (item.value) stack.push([item.value, depth + 1]);
      }
    }
  }
  return true;
}

/**
 * Keys, tags, aliases and the expanded size of a composed document. Recursion depth is bounded by
 * MAX_DEPTH (checked on the syntax tree).
 */
function checkDocument(doc: Document.Parsed, fail: Fail, lineAt: (offset: number) => number): boolean {
  let ok = true;
  const problem = (offset: number | undefined, message: string, segs: Seg[]): void => {
    ok = false;
    fail(offset, message, segs);
  };
  // Pass 1, every node once, aliases not followed: keys, tags, and aliases that name nothing or
  // the value they sit in (an alias can only name an earlier anchor, so a cycle always runs
  // through an ancestor).
  const open = new Set<unknown>();
  const walk = (node: unknown, segs: Seg[]): void => {
    if (node === null || node === undefined) return;
    if (isAlias(node)) {
      const target = node.resolve(doc);
      const name = cut(node.source);
      if (!target) problem(node.range?.[0], `alias '*${name}' names no anchor '&${name}' before it`, segs);
      else if (open.has(target)) problem(node.range?.[0], `alias '*${name}' is inside the value it names (it would never end)`, segs);
      return;
    }
    const tag = (node as Node).tag;
    if (tag !== undefined && !CORE_TAGS.has(tag)) {
      problem((node as Node).range?.[0], `YAML tag '${cut(tag.replace(/^tag:yaml\.org,2002:/, '!!'))}' is not supported here (plain strings, numbers, booleans, lists and mappings only)`, segs);
    }
    open.add(node);
    if (isMap(node)) {
      const seen = new Map<string, number | undefined>();
      for (const p of node.items) {
        if (!isScalar(p.key)) {
          problem((p.key as Node | null)?.range?.[0], 'a key must be a plain value, not a list, a mapping or an alias', segs);
          continue;
        }
        const k = String(p.key.value);
        const at = p.key.range?.[0];
        if (seen.has(k)) problem(at, `duplicate key ${quote(k)} (first at line ${seen.get(k)})`, [...segs, k]);
        else seen.set(k, at === undefined ? undefined : lineAt(at));
        walk(p.key, [...segs, k]);
        walk(p.value, [...segs, k]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((v, i) => walk(v, [...segs, i]));
    }
    open.delete(node);
  };
  walk(doc.contents, []);
  if (!ok) return false;

  // Pass 2: values with aliases expanded, each anchor's size computed once (a bomb costs its number
  // of anchors here, not its expansion); reported where the running count passes the limit.
  const sizes = new Map<unknown, number>();
  const size = (node: unknown): number => {
    if (isAlias(node)) return size(node.resolve(doc));
    if (node === null || node === undefined) return 0;
    let n = sizes.get(node);
    if (n !== undefined) return n;
    n = 1;
    if (isMap(node)) for (const p of node.items) n += size(p.key) + size(p.value);
    else if (isSeq(node)) for (const v of node.items) n += size(v);
    sizes.set(node, n);
    return n;
  };
  let total = 0;
  const count = (node: unknown, segs: Seg[]): boolean => {
    if (node === null || node === undefined) return true;
    if (isAlias(node)) {
      const n = size(node);
      total += n;
      if (total > MAX_VALUES) {
        problem(node.range?.[0], `alias '*${cut(node.source)}' expands to ${n} values, past the limit of ${MAX_VALUES} values per file (aliases expanded): an alias bomb?`, segs);
        return false;
      }
      return true;
    }
    if (++total > MAX_VALUES) {
      problem((node as Node).range?.[0], `the file holds more than ${MAX_VALUES} values; a definition file may hold at most ${MAX_VALUES}`, segs);
      return false;
    }
    if (isMap(node)) {
      for (const p of node.items) {
        const k = String((p.key as { value?: unknown }).value);
        if (!count(p.key, [...segs, k]) || !count(p.value, [...segs, k])) return false;
      }
    } else if (isSeq(node)) {
      for (let i = 0; i < node.items.length; i++) if (!count(node.items[i], [...segs, i])) return false;
    }
    return true;
  };
  count(doc.contents, []);
  return ok;
}
