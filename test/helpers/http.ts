// A real HTTP server on 127.0.0.1 serving a directory (Python's http.server: it follows the
// repository's repodata symlink exactly as a web server would). Its access log is kept, so a test
// can assert exactly which files a client downloaded.
import { spawn, type ChildProcess } from 'node:child_process';

export interface Server {
  url: string;
  child: ChildProcess;
  stop: () => void;
  /** Paths requested with GET since the start (or the last `mark()`), in order, with status. */
  requests: () => { path: string; status: number }[];
  mark: () => void;
}

export async function serveDirectory(dir: string): Promise<Server> {
  const child = spawn('python3', ['-u', '-m', 'http.server', '--bind', '127.0.0.1', '--directory', dir, '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    // Waits for the line naming the port; the deadline only bounds a hang (Python starting on a
    // busy machine can take seconds: 10 s was too close to be no more than that).
    const timer = setTimeout(() => reject(new Error(`http.server did not start: ${out}`)), 120_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /port ([0-9]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', () => reject(new Error(`http.server exited: ${out}`)));
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  let from = 0;
  const parse = () =>
    [...log.slice(from).matchAll(/"GET ([^ ]+) HTTP\/[0-9.]+" ([0-9]{3})/g)].map((m) => ({ path: decodeURIComponent(m[1]!), status: Number(m[2]) }));
  return {
    url: `http://127.0.0.1:${port}/`,
    child,
    stop: () => child.kill(),
    requests: parse,
    mark: () => {
      from = log.length;
    },
  };
}
