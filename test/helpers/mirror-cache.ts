// A Debian mirror on 127.0.0.1 that fetches each file from the real one once and then serves it from
// disk: every build of a test sees one state of the mirror (the same InRelease, the same packages),
// as builds of "the same inputs" must, and only the first one waits for the network. Files are
// fetched whole into a temporary name and renamed, so a reader never sees half a file; two requests
// for one file share its fetch.
import { cpSync, createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface MirrorCache {
  /** The server's base URL, http://127.0.0.1:PORT (no trailing slash): each archive under its name. */
  url: string;
  /** Requests answered from the upstream (first time) and from disk. */
  counts: { fetched: number; cached: number };
  stop(): Promise<void>;
}

/**
 * `archives`: name -> upstream URL, e.g. { debian: 'http://deb.debian.org/debian' }; the archive is
 * then served at `<url>/debian/`.
 */
export async function startMirrorCache(archives: Record<string, string>, dir: string): Promise<MirrorCache> {
  mkdirSync(dir, { recursive: true });
  const inflight = new Map<string, Promise<number>>();
  const counts = { fetched: 0, cached: 0 };

  /** The file for a request path, fetched when missing; its HTTP status. */
  const ensure = (rel: string): Promise<number> => {
    const file = path.join(dir, rel);
    if (existsSync(file)) {
      counts.cached++;
      return Promise.resolve(200);
    }
    let p = inflight.get(rel);
    if (!p) {
      p = (async () => {
        const [name, ...rest] = rel.split('/');
        const res = await fetch(`${archives[name!]}/${rest.join('/')}`);
        if (res.status !== 200) return res.status;
        const body = Buffer.from(await res.arrayBuffer());
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(`${file}.part`, body);
        renameSync(`${file}.part`, file);
        counts.fetched++;
        return 200;
      })().finally(() => inflight.delete(rel));
      inflight.set(rel, p);
    }
    return p;
  };

  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const rel = decodeURIComponent(u.pathname).replace(/^\//, '');
    const name = rel.split('/')[0]!;
    if (req.method !== 'GET' || rel.split('/').includes('..') || !(name in archives) || rel === name || rel === `${name}/`) {
      res.writeHead(404).end();
      return;
    }
    ensure(rel).then(
      (status) => {
        if (status !== 200) {
          res.writeHead(status).end();
          return;
        }
        const file = path.join(dir, rel);
        res.writeHead(200, { 'content-length': statSync(file).size });
        createReadStream(file).pipe(res);
      },
      (err: Error) => res.writeHead(502).end(err.message),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Debian's archives as the default sets name them. */
export const DEBIAN_ARCHIVES = { debian: 'http://deb.debian.org/debian', 'debian-security': 'http://deb.debian.org/debian-security' };

/**
 * A copy of a layers directory whose sets read Debian's archives through the cache (every URL of
 * DEBIAN_ARCHIVES rewritten to the cache's): the same sets, seeing one state of the mirror.
 */
export function freezeLayers(from: string, to: string, cacheUrl: string): string {
  cpSync(from, to, { recursive: true });
  // Longest first: .../debian-security must not be read as .../debian followed by "-security".
  const pairs = Object.entries(DEBIAN_ARCHIVES).sort((a, b) => b[1].length - a[1].length);
  for (const rel of readdirSync(to, { recursive: true }) as string[]) {
    const file = path.join(to, rel);
    if (!statSync(file).isFile()) continue;
    const text = readFileSync(file, 'utf8');
    let out = text;
    for (const [name, url] of pairs) out = out.split(url).join(`${cacheUrl}/${name}`);
    if (out !== text) writeFileSync(file, out);
  }
  return to;
}
