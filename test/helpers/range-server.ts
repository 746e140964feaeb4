// A small HTTP server on 127.0.0.1 for download tests, in Node so it can do what Python's
// http.server cannot: answer Range requests (206), and cut a response off halfway once, the way a
// dropped connection does. It records every request with its Range header.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RangeServer {
  url: string;
  requests: { path: string; range?: string }[];
  /** The next GET of `path` sends the full headers, then only `bytes` bytes, then drops the connection. */
  cutNext: (path: string, bytes: number) => void;
  stop: () => Promise<void>;
}

export async function serveFiles(files: Record<string, Buffer>): Promise<RangeServer> {
  const requests: RangeServer['requests'] = [];
  const cuts = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const p = req.url ?? '/';
    requests.push({ path: p, range: req.headers.range });
    const body = files[p];
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    let start = 0;
    const m = /^bytes=([0-9]+)-$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    } else {
      res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
    }
    const cut = cuts.get(p);
    if (cut !== undefined) {
      cuts.delete(p);
      res.write(body.subarray(start, start + cut), () => res.destroy());
      return;
    }
    res.end(body.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    cutNext: (path, bytes) => cuts.set(path, bytes),
    stop: () => new Promise((r) => server.close(() => r())),
  };
}
