// Web-server access logs, read for `ost-images usage`: which file was fetched, when, with what
// answer. Pure parsing of one line at a time, plus the reading of a log file (plain or gzip) into
// lines, so usage.ts only decides what a request means.
//
// Formats (all share the Common Log Format's first seven fields):
//   Common    203.0.113.7 - - [29/Nov/2026:22:03:51 +0100] "GET /p HTTP/1.1" 200 5120
//   Combined  ... 200 5120 "referer" "user agent"   (nginx's default `combined`, Apache's)
//   Python    127.0.0.1 - - [29/Nov/2026 22:03:51] "GET /p HTTP/1.1" 200 -
//             (http.server, what the test helpers serve with: no zone, no byte count; it also
//             writes messages such as `... [date] code 404, message File not found`)
// Fields after the combined ones (nginx formats that append $request_time and the like) are
// ignored. Inside quotes nginx writes `"` and non-printable bytes as \xHH, Apache as \" and \xhh,
// Python 3.12+ control characters as \xhh: all of these are undone.
//
// Time: CLF times carry their zone. Python's carry none: they are the server's local time, and
// are read here in the local time zone of the process reading the log (so `TZ=... ost-images
// usage` reads a log written in another zone). `localTime` lets callers and tests fix that.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { OstError } from '../core/errors.js';
import { checkInterrupted } from '../core/interrupt.js';
import { faultAt } from '../input/test-hooks.js';

export interface Request {
  kind: 'request';
  client: string;
  time: Date;
  /** The zone the log wrote ("+0100"), or undefined: local time (Python's format). */
  zone?: string;
  /** Undefined for a request line that is not "METHOD target [HTTP/x]" (nginx logs "-"). */
  method?: string;
  /** Percent-decoded, query and fragment stripped; undefined with method. */
  path?: string;
  status: number;
  /** Body bytes sent; undefined when the log says "-". */
  bytes?: number;
  referer?: string;
  userAgent?: string;
}

/** A line the server writes that is not a request (Python's "code 404, message ..."). */
export interface Note {
  kind: 'note';
  time: Date;
  text: string;
}

export interface Malformed {
  kind: 'malformed';
  reason: string;
}

export type LogEntry = Request | Note | Malformed;

/** Turns a zone-less date into a point in time: the local time zone unless told otherwise. */
export type LocalTime = (year: number, month0: number, day: number, h: number, m: number, s: number) => Date;
export const systemLocalTime: LocalTime = (y, mo, d, h, mi, s) => new Date(y, mo, d, h, mi, s);
export const utcLocalTime: LocalTime = (y, mo, d, h, mi, s) => new Date(Date.UTC(y, mo, d, h, mi, s));

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// host ident user [date] "request" status bytes, then optionally "referer" "agent", then anything.
// The user field may itself be quoted or hold spaces in odd configurations: it is lazily matched
// up to the bracket. A quoted string is any run of non-quote, non-backslash bytes or escapes.
// The date is at most 64 characters: unbounded, every " [" of a long line without a ']' would be
// tried against the rest of the line (quadratic: 1.4 s for one 64 KiB line of " [").
const Q = '"((?:[^"\\\\]|\\\\.)*)"';
const LINE = new RegExp(`^(\\S+) (\\S+) (.*?) \\[([^\\]]{1,64})\\] (?:${Q} ([0-9]{3}) ([0-9]+|-)(?: ${Q} ${Q})?(?: .*)?|(.*))$`);
const CLF_DATE = /^([0-9]{2})\/([A-Z][a-z]{2})\/([0-9]{4}):([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})$/;
const PY_DATE = /^([0-9]{2})\/([A-Z][a-z]{2})\/([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2})$/;

function parseDate(text: string, localTime: LocalTime): { time: Date; zone?: string } | undefined {
  const clf = CLF_DATE.exec(text);
  const py = clf ? undefined : PY_DATE.exec(text);
  const m = clf ?? py;
  if (!m) return undefined;
  const [day, mon, year, h, mi, s] = [Number(m[1]), MONTHS.indexOf(m[2]!), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])];
  // 60: a leap second as some servers write it.
  if (mon < 0 || day < 1 || day > 31 || h > 23 || mi > 59 || s > 60) return undefined;
  // Date.UTC rolls 31 Feb over into March: refuse what does not round-trip.
  if (new Date(Date.UTC(year, mon, day)).getUTCDate() !== day) return undefined;
  if (clf) {
    const sign = clf[7] === '-' ? -1 : 1;
    const offH = Number(clf[8]);
    const offM = Number(clf[9]);
    if (offH > 14 || offM > 59) return undefined;
    const offset = sign * (offH * 60 + offM) * 60_000;
    return { time: new Date(Date.UTC(year, mon, day, h, mi, s) - offset), zone: `${clf[7]}${clf[8]}${clf[9]}` };
  }
  const time = localTime(year, mon, day, h, mi, s);
  return Number.isNaN(time.getTime()) ? undefined : { time };
}

/** Undoes the escapes servers write inside quoted fields: \" \\ and \xHH (as bytes, then UTF-8). */
export function unescapeField(s: string): string {
  if (!s.includes('\\')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      const n = s[i + 1]!;
      const hex = /^x[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 4)) ? s.slice(i + 2, i + 4) : undefined;
      if (hex) {
        bytes.push(parseInt(hex, 16));
        i += 3;
        continue;
      }
      if (n === '"' || n === '\\') {
        bytes.push(n.charCodeAt(0));
        i += 1;
        continue;
      }
    }
    bytes.push(...Buffer.from(c, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * The path of a request target: an origin-form target ("/a/b?q") or an absolute one as a proxy
 * receives it ("http://host/a/b"); query and fragment stripped, then percent-decoded as UTF-8. A
 * broken escape ("%zz") is kept as written: it names no file anyway.
 */
export function targetPath(target: string): string {
  let t = target;
  const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(t);
  if (abs) t = t.slice(abs[0].length) || '/';
  t = t.replace(/[?#].*$/s, '');
  // Most paths need no decoding, or decode cleanly; byte by byte only for broken escapes.
  if (!t.includes('%')) return t;
  try {
    return decodeURIComponent(t);
  } catch {
    // "%zz", a lone "%", or escapes that are not UTF-8: below.
  }
  const bytes: number[] = [];
  for (let i = 0; i < t.length; i++) {
    if (t[i] === '%' && /^[0-9a-fA-F]{2}$/.test(t.slice(i + 1, i + 3))) {
      bytes.push(parseInt(t.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(t[i]!, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** One line of an access log (without its line break). Never throws. */
export function parseLine(line: string, localTime: LocalTime = systemLocalTime): LogEntry {
  if (line.trim() === '') return { kind: 'malformed', reason: 'empty line' };
  // NUL and other C0 controls never appear unescaped in a log line servers write: a damaged file.
  // (The replacement character comes from bytes that are not UTF-8: servers escape those too.)
  if (/[\u0000-\u0008\u000b-\u001f\u007f\ufffd]/.test(line)) return { kind: 'malformed', reason: 'binary data' };
  const m = LINE.exec(line);
  if (!m) return { kind: 'malformed', reason: 'not an access log line (client ident user [time] "request" status bytes)' };
  const date = parseDate(m[4]!, localTime);
  if (!date) return { kind: 'malformed', reason: `bad time [${m[4]}]` };
  if (m[10] !== undefined) {
    // A time, but no quoted request and status: Python's messages, else damage.
    if (/^code [0-9]{3}, message /.test(m[10])) return { kind: 'note', time: date.time, text: m[10] };
    return { kind: 'malformed', reason: 'no "request" status bytes after the time' };
  }
  const request = unescapeField(m[5]!);
  const status = Number(m[6]);
  if (status < 100 || status > 599) return { kind: 'malformed', reason: `bad status ${m[6]}` };
  const entry: Request = { kind: 'request', client: m[1]!, time: date.time, status };
  if (date.zone) entry.zone = date.zone;
  if (m[7] !== '-') entry.bytes = Number(m[7]);
  if (m[8] !== undefined) entry.referer = unescapeField(m[8]);
  if (m[9] !== undefined) entry.userAgent = unescapeField(m[9]);
  // METHOD target [protocol]; a target with raw spaces (nginx logs what it got) keeps them.
  const r = /^([A-Z][A-Z0-9_-]*) (.+?)(?: (HTTP\/[0-9.]+))?$/.exec(request);
  if (r) {
    entry.method = r[1];
    entry.path = targetPath(r[2]!);
  }
  return entry;
}

/**
 * The bounds of reading one log: what no access log line or file reaches, so that a damaged or
 * hostile file (a rotated log zero-filled after a crash, a gzip bomb, a 50 MB "line") costs time
 * linear in its size and bounded memory, never a hang.
 */
export interface LogLimits {
  /** A longer line is skipped (counted as malformed, its length said): no server writes one. */
  maxLineBytes: number;
  /** Bytes of a log after decompression; past it the log is refused (LogTooLarge). */
  maxBytes: number;
}

export const LOG_LIMITS: Readonly<LogLimits> = Object.freeze({ maxLineBytes: 64 * 1024, maxBytes: 16 * 2 ** 30 });

/** A log that decompresses to more than LogLimits.maxBytes. */
export class LogTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`decompresses to more than ${limit} bytes`);
  }
}

export interface LogLine {
  /** The line without its line break; of an overlong one, its first maxLineBytes bytes. */
  line: string;
  complete: boolean;
  /** Set for a line longer than maxLineBytes: its whole length in bytes. */
  overlong?: number;
  error?: string;
}

/** Bytes read between two turns of the event loop: an interrupt is seen within one such slice. */
const YIELD_EVERY = 4 * 2 ** 20;

/**
 * The lines of a log file, plain or gzip-compressed (told by the content, not the name: logrotate
 * names vary), as they are read, without loading the file whole. `complete` is false for a last
 * line without its line break: in a live log that is a line still being written. A gzip stream
 * that ends early (a rotation compressing right now) or is damaged ends the lines there, with
 * `error` set on the last item.
 *
 * Linear in the input: each byte is looked at once (no growing buffer copied per chunk), a line
 * keeps at most `maxLineBytes` of itself, and the reader gives the event loop a turn every few
 * MiB and checks for an interrupt there, so SIGINT/SIGTERM stop it even inside one huge line.
 */
export async function* readLogLines(file: string, limits: LogLimits = LOG_LIMITS): AsyncGenerator<LogLine> {
  const head = await firstBytes(file, 2);
  const gzip = head.length === 2 && head[0] === 0x1f && head[1] === 0x8b;
  const raw = createReadStream(file, { highWaterMark: 256 * 1024 });
  const stream = gzip ? raw.pipe(createGunzip({ chunkSize: 256 * 1024 })) : raw;
  if (gzip) raw.on('error', (err) => stream.destroy(err));
  const chunks = faultAt('usage:endless-log') ? endless(stream as AsyncIterable<Buffer>) : (stream as AsyncIterable<Buffer>);
  // The current line: its kept pieces (at most maxLineBytes) and its whole length.
  let parts: Buffer[] = [];
  let kept = 0;
  let length = 0;
  let total = 0;
  let sinceYield = 0;
  const take = (): LogLine => {
    const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, kept);
    let end = buf.length;
    if (length <= limits.maxLineBytes && end > 0 && buf[end - 1] === 0x0d) end--; // CRLF, from a log copied through Windows
    const item: LogLine = { line: buf.subarray(0, end).toString('utf8'), complete: true };
    if (length > limits.maxLineBytes) item.overlong = length;
    parts = [];
    kept = 0;
    length = 0;
    return item;
  };
  try {
    for await (const chunk of chunks) {
      total += chunk.length;
      if (total > limits.maxBytes) throw new LogTooLarge(limits.maxBytes);
      let start = 0;
      while (start < chunk.length) {
        const nl = chunk.indexOf(0x0a, start);
        const end = nl < 0 ? chunk.length : nl;
        length += end - start;
        if (kept < limits.maxLineBytes && end > start) {
          const piece = chunk.subarray(start, Math.min(end, start + limits.maxLineBytes - kept));
          parts.push(piece);
          kept += piece.length;
        }
        if (nl < 0) break;
        yield take();
        start = nl + 1;
      }
      sinceYield += chunk.length;
      if (sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
      checkInterrupted();
    }
  } catch (err) {
    if (!gzip || err instanceof LogTooLarge || err instanceof OstError) throw err;
    const rest = take();
    yield { ...rest, complete: false, error: (err as Error).message };
    return;
  } finally {
    stream.destroy();
    raw.destroy();
  }
  // A compressed log is a rotated one: nobody appends to it, its last line is complete as it is.
  if (length > 0) yield { ...take(), complete: gzip };
}

/**
 * Test hook OST_IMAGES_FAULT=usage:endless-log (test-hooks.ts): the log goes on with zeros after
 * its end, so that its parse ends only by an interrupt (or, bounded, at LogLimits.maxBytes): a
 * test can interrupt a parse that is certainly still running.
 */
async function* endless(stream: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield* stream;
  const zeros = Buffer.alloc(256 * 1024);
  for (;;) yield zeros;
}

async function firstBytes(file: string, n: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(n);
    const { bytesRead } = await fh.read(b, 0, n, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
