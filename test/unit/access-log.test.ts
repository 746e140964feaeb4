// Access-log lines as nginx, Apache and Python's http.server write them, parsed and then judged
// (download, partial, ignored with why, malformed) against a repository's known pool files.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { LOG_LIMITS, LogTooLarge, parseLine, readLogLines, targetPath, unescapeField, utcLocalTime, type LogLimits, type LogLine, type Request } from '../../src/usage/access-log.js';
import { classify, type KnownFile } from '../../src/usage/usage.js';
import { testTmp } from '../helpers/tmp.js';

const ENGINE = 'ost-images-demo-engine-installed-12-20261120000200.noarch.rpm';
const UPGRADE = 'ost-images-demo-upgrade-12-20261120000100.noarch.rpm';
const known = new Map<string, KnownFile>([
  [ENGINE, { nvr: 'ost-images-demo-engine-installed-12-20261120000200', size: 50_000 }],
  [UPGRADE, { nvr: 'ost-images-demo-upgrade-12-20261120000100', size: 40_000 }],
  // Gone from every snapshot: only usage.json still knows its build, not its size.
  ['ost-images-demo-base-12-20261001000000.noarch.rpm', { nvr: 'ost-images-demo-base-12-20261001000000' }],
]);

interface Row {
  name: string;
  line: string;
  /** Expected fields of the parsed request (subset). */
  parsed?: Partial<Omit<Request, 'time'>> & { time?: string };
  /** What it means for usage. */
  verdict: string;
}

const UA = 'libdnf (Debian GNU/Linux 12; generic; Linux.x86_64)';
const rows: Row[] = [
  // nginx `combined`: $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
  {
    name: 'nginx combined, 200 of a whole package, URL prefix',
    line: `192.0.2.10 - - [27/Nov/2026:10:02:11 +0000] "GET /ost-images/packages/${ENGINE} HTTP/1.1" 200 50000 "-" "${UA}"`,
    parsed: { client: '192.0.2.10', method: 'GET', path: `/ost-images/packages/${ENGINE}`, status: 200, bytes: 50000, referer: '-', userAgent: UA, zone: '+0000', time: '2026-11-27T10:02:11.000Z' },
    verdict: 'download ost-images-demo-engine-installed-12-20261120000200',
  },
  {
    name: 'nginx combined, zone east of UTC, user agent with quotes (nginx writes \\x22) and spaces',
    line: `198.51.100.7 - - [27/Nov/2026:11:02:11 +0100] "GET /packages/${UPGRADE} HTTP/2.0" 200 40000 "https://ci.example.org/job/7?a=\\x22b\\x22" "curl/8.5.0 \\x22quoted\\x22 (x86_64-pc-linux-gnu)"`,
    parsed: { referer: 'https://ci.example.org/job/7?a="b"', userAgent: 'curl/8.5.0 "quoted" (x86_64-pc-linux-gnu)', time: '2026-11-27T10:02:11.000Z', zone: '+0100' },
    verdict: 'download ost-images-demo-upgrade-12-20261120000100',
  },
  {
    name: 'Apache combined, user agent with \\" escapes, zone west of UTC, authenticated user',
    line: `203.0.113.9 - ci-bot [27/Nov/2026:05:02:11 -0500] "GET /mirror/ost-images/packages/${UPGRADE} HTTP/1.1" 200 40000 "-" "Mozilla/5.0 (X11; Linux x86_64) \\"Tester\\" 1.0"`,
    parsed: { userAgent: 'Mozilla/5.0 (X11; Linux x86_64) "Tester" 1.0', time: '2026-11-27T10:02:11.000Z' },
    verdict: 'download ost-images-demo-upgrade-12-20261120000100',
  },
  {
    name: 'Apache common (no referer, agent), bytes "-" on a 304',
    line: `203.0.113.9 - - [27/Nov/2026:10:02:11 +0000] "GET /packages/${ENGINE} HTTP/1.1" 304 -`,
    parsed: { status: 304, bytes: undefined, referer: undefined, userAgent: undefined },
    verdict: 'ignored: status 304',
  },
  {
    name: 'Apache common, 200 with bytes',
    line: `10.0.0.5 - - [01/Dec/2026:00:00:00 +0000] "GET /packages/${ENGINE} HTTP/1.0" 200 50000`,
    parsed: { time: '2026-12-01T00:00:00.000Z' },
    verdict: 'download ost-images-demo-engine-installed-12-20261120000200',
  },
  {
    name: 'IPv6 client',
    line: `2001:db8::17 - - [27/Nov/2026:10:02:11 +0000] "GET /packages/${ENGINE} HTTP/1.1" 200 50000 "-" "${UA}"`,
    parsed: { client: '2001:db8::17' },
    verdict: 'download ost-images-demo-engine-installed-12-20261120000200',
  },
  {
    name: 'IPv4-mapped IPv6 client',
    line: `::ffff:192.0.2.1 - - [27/Nov/2026:10:02:11 +0000] "GET /packages/${ENGINE} HTTP/1.1" 206 1024 "-" "${UA}"`,
    parsed: { client: '::ffff:192.0.2.1', status: 206 },
    verdict: 'partial ost-images-demo-engine-installed-12-20261120000200',
  },
  {
    name: 'Python http.server (no zone: local time; the test reads it as UTC), bytes "-"',
    line: `127.0.0.1 - - [29/Nov/2026 22:03:51] "GET /packages/${ENGINE} HTTP/1.1" 200 -`,
    parsed: { client: '127.0.0.1', zone: undefined, bytes: undefined, time: '2026-11-29T22:03:51.000Z' },
    verdict: 'download ost-images-demo-engine-installed-12-20261120000200',
  },
  {
    name: "Python http.server's message line after a 404",
    line: '127.0.0.1 - - [29/Nov/2026 22:03:51] code 404, message File not found',
    verdict: 'ignored: server message',
  },
  {
    name: 'Python http.server 404 for a package',
    line: `127.0.0.1 - - [29/Nov/2026 22:03:51] "GET /packages/ost-images-demo-nope-12-1.noarch.rpm HTTP/1.1" 404 -`,
    verdict: 'ignored: status 404',
  },
  {
    name: 'HEAD of a package fetches nothing',
    line: `192.0.2.10 - - [27/Nov/2026:10:02:11 +0000] "HEAD /packages/${ENGINE} HTTP/1.1" 200 0 "-" "curl/8.5.0"`,
    parsed: { method: 'HEAD' },
    verdict: 'ignored: HEAD request',
  },
  {
    name: 'repodata',
    line: '192.0.2.10 - - [27/Nov/2026:10:02:10 +0000] "GET /ost-images/repodata/repomd.xml HTTP/1.1" 200 3120 "-" "libdnf"',
    verdict: 'ignored: not a package',
  },
  {
    name: 'a snapshot path is not a package file (no /packages/ directly above)',
    line: '192.0.2.10 - - [27/Nov/2026:10:02:10 +0000] "GET /repodata/abc-primary.xml.zst HTTP/1.1" 200 812 "-" "libdnf"',
    verdict: 'ignored: not a package',
  },
  {
    name: 'percent-encoded path and a query string',
    line: `192.0.2.10 - - [27/Nov/2026:10:02:11 +0000] "GET /ost%2Dimages/packages/${ENGINE.replace('-12-', '%2D12%2D')}?token=a%20b HTTP/1.1" 200 50000 "-" "-"`,
    parsed: { path: `/ost-images/packages/${ENGINE}` },
    verdict: 'download ost-images-demo-engine-installed-12-20261120000200',
  },
  {
    name: 'absolute-form target (through a forward proxy)',
    line: `192.0.2.10 - - [27/Nov/2026:10:02:11 +0000] "GET http://repo.example.org/ost-images/packages/${ENGINE} HTTP/1.1" 200 50000 "-" "-"`,
    parsed: { path: `/ost-images/packages/${ENGINE}` },
    verdict: 'download ost-images-demo-engine-installed-12-20261120000200',
  },
  {
    name: 'a 200 cut short (fewer bytes than the package) counts as partial',
    line: `192.0.2.10 - - [27/Nov/2026:10:02:11 +0000] "GET /packages/${ENGINE} HTTP/1.1" 200 8192 "-" "${UA}"`,
    verdict: 'partial ost-images-demo-engine-installed-12-20261120000200',
  },
  {
    name: 'a package already gone from every snapshot, known from usage.json',
    line: '192.0.2.10 - - [27/Nov/2026:10:02:11 +0000] "GET /packages/ost-images-demo-base-12-20261001000000.noarch.rpm HTTP/1.1" 200 77 "-" "-"',
    verdict: 'download ost-images-demo-base-12-20261001000000',
  },
  {
    name: 'an rpm of some other repository on the same server',
    line: '192.0.2.10 - - [27/Nov/2026:10:02:11 +0000] "GET /debian/packages/bash-5.2-1.x86_64.rpm HTTP/1.1" 200 77 "-" "-"',
    verdict: 'ignored: package not of this repository',
  },
  {
    name: 'nginx "-" request (connection closed before a request line), 400',
    line: '192.0.2.66 - - [27/Nov/2026:10:02:11 +0000] "-" 400 0 "-" "-"',
    parsed: { method: undefined, path: undefined, status: 400 },
    verdict: 'ignored: no request line',
  },
  {
    name: 'TLS handshake sent to the plain port: a request line of escaped bytes',
    line: '192.0.2.66 - - [27/Nov/2026:10:02:11 +0000] "\\x16\\x03\\x01\\x00\\xF4\\x01\\x00" 400 157 "-" "-"',
    verdict: 'ignored: no request line',
  },
  {
    name: 'nginx format with extra fields after the combined ones ($request_time $upstream...)',
    line: `192.0.2.10 - - [27/Nov/2026:10:02:11 +0000] "GET /packages/${ENGINE} HTTP/1.1" 200 50000 "-" "${UA}" 0.012 "-"`,
    parsed: { userAgent: UA },
    verdict: 'download ost-images-demo-engine-installed-12-20261120000200',
  },
  {
    name: 'HTTP/0.9-style request line without protocol',
    line: `192.0.2.10 - - [27/Nov/2026:10:02:11 +0000] "GET /packages/${ENGINE}" 200 50000`,
    parsed: { path: `/packages/${ENGINE}` },
    verdict: 'download ost-images-demo-engine-installed-12-20261120000200',
  },
  // Malformed: counted, skipped.
  { name: 'empty', line: '', verdict: 'malformed: empty line' },
  { name: 'blanks only', line: '   \t ', verdict: 'malformed: empty line' },
  { name: 'truncated mid-request', line: `192.0.2.10 - - [27/Nov/2026:10:02:11 +0000] "GET /packages/${ENGINE} HT`, verdict: 'malformed: no "request" status bytes after the time' },
  { name: 'truncated in the time', line: '192.0.2.10 - - [27/Nov/2026:10:0', verdict: 'malformed: not an access log line (client ident user [time] "request" status bytes)' },
  { name: 'binary garbage', line: '\u0000\u0000\u0000\u0000\u0007\u0013ELF\u0001', verdict: 'malformed: binary data' },
  { name: 'bytes that are not UTF-8', line: `192.0.2.10 - - [27/Nov/2026:10:02:11 +0000] "GET /\ufffd\ufffd HTTP/1.1" 200 1`, verdict: 'malformed: binary data' },
  { name: 'bad month', line: `192.0.2.10 - - [27/Foo/2026:10:02:11 +0000] "GET /packages/${ENGINE} HTTP/1.1" 200 50000`, verdict: 'malformed: bad time [27/Foo/2026:10:02:11 +0000]' },
  { name: '31 February', line: `192.0.2.10 - - [31/Feb/2026:10:02:11 +0000] "GET /packages/${ENGINE} HTTP/1.1" 200 50000`, verdict: 'malformed: bad time [31/Feb/2026:10:02:11 +0000]' },
  { name: 'hour 25', line: `127.0.0.1 - - [29/Nov/2026 25:03:51] "GET /packages/${ENGINE} HTTP/1.1" 200 -`, verdict: 'malformed: bad time [29/Nov/2026 25:03:51]' },
  { name: 'an ISO time (not an access log)', line: `192.0.2.10 - - [2026-11-27T10:02:11Z] "GET /packages/${ENGINE} HTTP/1.1" 200 50000`, verdict: 'malformed: bad time [2026-11-27T10:02:11Z]' },
  { name: 'status out of range', line: `192.0.2.10 - - [27/Nov/2026:10:02:11 +0000] "GET /packages/${ENGINE} HTTP/1.1" 999 50000`, verdict: 'malformed: bad status 999' },
  { name: 'an error-log line', line: '2026/11/27 10:02:11 [error] 1234#1234: *5 open() "/srv/x" failed (2: No such file or directory)', verdict: 'malformed: not an access log line (client ident user [time] "request" status bytes)' },
];

const judge = (line: string): string => {
  const v = classify(parseLine(line, utcLocalTime), known);
  return 'nvr' in v ? `${v.use} ${v.nvr}` : `${v.use}: ${v.reason}`;
};

describe('access-log lines', () => {
  it.each(rows)('$name', ({ line, parsed, verdict }) => {
    expect(judge(line)).toBe(verdict);
    if (parsed) {
      const e = parseLine(line, utcLocalTime);
      expect(e.kind).toBe('request');
      const r = e as Request;
      const { time, ...rest } = parsed;
      if (time) expect(r.time.toISOString()).toBe(time);
      for (const [k, v] of Object.entries(rest)) expect(r[k as keyof Request], k).toEqual(v);
    }
  });

  it('reads a zone-less time in the zone it is told (here one hour east of UTC)', () => {
    const plusOne = (y: number, mo: number, d: number, h: number, mi: number, s: number) => new Date(Date.UTC(y, mo, d, h - 1, mi, s));
    const e = parseLine(`127.0.0.1 - - [29/Nov/2026 00:30:00] "GET /x HTTP/1.1" 200 -`, plusOne) as Request;
    expect(e.time.toISOString()).toBe('2026-11-28T23:30:00.000Z');
  });

  it('never throws, whatever the line', () => {
    const nasty = ['"', '[', ']', '- - [', 'a b c [d] "e" 200 -', '\\', '"\\', `x y z [29/Nov/2026 22:03:51] "${'\\'.repeat(9)}" 200 -`, '%', '%%%'];
    for (const l of nasty) expect(() => parseLine(l)).not.toThrow();
  });

  it('unescapes fields and decodes targets', () => {
    expect(unescapeField('a\\"b\\\\c\\x41\\xc3\\xa9')).toBe('a"b\\cAé');
    expect(targetPath('/a%20b/c%2Fd?x=%zz#f')).toBe('/a b/c/d');
    expect(targetPath('/broken%zz%4')).toBe('/broken%zz%4');
    expect(targetPath('/%C3%A9t%C3%A9')).toBe('/été');
    expect(targetPath('https://h:8443')).toBe('/');
  });
});

describe('reading log files', () => {
  const dir = testTmp('access-log');
  const lines = async (file: string, limits?: LogLimits) => {
    const out: LogLine[] = [];
    for await (const l of readLogLines(file, limits)) out.push(l);
    return out;
  };

  it('plain: CRLF and LF; a last line without its break is not complete (still being written)', async () => {
    const f = path.join(dir, 'access.log');
    writeFileSync(f, 'one\r\ntwo\nthr');
    expect(await lines(f)).toEqual([
      { line: 'one', complete: true },
      { line: 'two', complete: true },
      { line: 'thr', complete: false },
    ]);
  });

  it('gzip (logrotate compress), told by content not name; its last line is complete', async () => {
    const f = path.join(dir, 'access.log.2');
    writeFileSync(f, gzipSync('one\ntwo'));
    expect(await lines(f)).toEqual([
      { line: 'one', complete: true },
      { line: 'two', complete: true },
    ]);
  });

  it('gzip cut short: the lines before are read, then an error item', async () => {
    const f = path.join(dir, 'access.log.3.gz');
    const body = Array.from({ length: 2000 }, (_, i) => `line ${i} ${'x'.repeat(i % 50)}`).join('\n');
    const gz = gzipSync(body);
    writeFileSync(f, gz.subarray(0, Math.floor(gz.length * 0.6)));
    const got = await lines(f);
    expect(got.length).toBeGreaterThan(10);
    expect(got.at(-1)!.error).toMatch(/end/i);
    expect(got.at(-1)!.complete).toBe(false);
    expect(got.slice(0, -1).every((l, i) => l.complete && l.line === `line ${i} ${'x'.repeat(i % 50)}`)).toBe(true);
  });

  // Issue 18: a 50 MB line took minutes (every chunk copied the growing rest) and a gzip bomb ran
  // for ever. Lines are bounded; what is over the bound is skipped and its length said.
  const small: LogLimits = { maxLineBytes: 8, maxBytes: 1 << 20 };
  it.each([
    ['plain', (t: string) => t],
    ['gzip', (t: string) => gzipSync(t)],
  ] as const)('%s: a line longer than maxLineBytes keeps its first bytes and says its length; the lines around it are whole', async (_k, encode) => {
    const f = path.join(dir, `long-${_k}.log`);
    writeFileSync(f, encode(`short\n${'y'.repeat(100_000)}\nexactly8\nnine 9999\r\nlast\n`));
    expect(await lines(f, small)).toEqual([
      { line: 'short', complete: true },
      { line: 'yyyyyyyy', complete: true, overlong: 100_000 },
      { line: 'exactly8', complete: true },
      { line: 'nine 999', complete: true, overlong: 10 },
      { line: 'last', complete: true },
    ]);
  });

  it('a line split over many chunks (4 MiB, no line break until the end) is one overlong line', async () => {
    const f = path.join(dir, 'one-line.log');
    writeFileSync(f, `${'z'.repeat(4 * 2 ** 20)}\nafter\n`);
    expect(await lines(f)).toEqual([
      { line: 'z'.repeat(LOG_LIMITS.maxLineBytes), complete: true, overlong: 4 * 2 ** 20 },
      { line: 'after', complete: true },
    ]);
  });

  it.each([
    ['a gzip bomb', (b: Buffer) => gzipSync(b)],
    ['a plain file', (b: Buffer) => b],
  ] as const)('%s past maxBytes: LogTooLarge naming the limit', async (k, encode) => {
    const f = path.join(dir, `big-${k.replace(/ /g, '-')}`);
    writeFileSync(f, encode(Buffer.alloc(3 << 20)));
    await expect(lines(f, small)).rejects.toThrow(new LogTooLarge(1 << 20));
  });

  it('an empty file has no lines', async () => {
    const f = path.join(dir, 'empty.log');
    writeFileSync(f, '');
    expect(await lines(f)).toEqual([]);
  });
});
