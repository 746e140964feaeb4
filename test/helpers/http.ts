// A real HTTP server on 127.0.0.1 serving a directory (Python's http.server: it follows the
// repository's repodata symlink exactly as a web server would). Its access log is kept, so a test
// can assert exactly which files a client downloaded.
import { spawn, type ChildProcess } from 'node:child_process';

export interface Server {
  url: string;
  child: ChildProcess;
  stop: () => void;
  /**
   * Paths requested with GET since the start (or the last `mark()`), in order, with status, as far
   * as the server's log has reached this process: a line can still be in the pipe. Prefer
   * `settledRequests`.
   */
  requests: () => { path: string; status: number }[];
  /**
   * The same, once every request answered so far is in: the server logs a request before it
   * answers it, so after a sentinel request's own line has arrived, so have the lines of all the
   * requests a client finished before. Waits for that line, not for time.
   */
  settledRequests: () => Promise<{ path: string; status: number }[]>;
  mark: () => void;
}

const SENTINEL = '/.ost-test-log-sentinel-';

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
  const listeners = new Set<() => void>();
  child.stderr!.on('data', (d: Buffer) => {
    log += d.toString();
    listeners.forEach((l) => l());
  });
  let from = 0;
  let sentinels = 0;
  const parse = () =>
    [...log.slice(from).matchAll(/"GET ([^ ]+) HTTP\/[0-9.]+" ([0-9]{3})/g)]
      .map((m) => ({ path: decodeURIComponent(m[1]!), status: Number(m[2]) }))
      .filter((r) => !r.path.startsWith(SENTINEL));
  const url = `http://127.0.0.1:${port}/`;
  return {
    url,
    child,
    stop: () => child.kill(),
    requests: parse,
    async settledRequests() {
      const sentinel = `${SENTINEL}${sentinels++}`;
      const logged = new Promise<void>((resolve) => {
        const check = () => {
          if (!log.includes(`"GET ${sentinel} HTTP/`)) return;
          listeners.delete(check);
          resolve();
        };
        listeners.add(check);
        check();
      });
      await (await fetch(`${url}${sentinel.slice(1)}`)).arrayBuffer(); // a 404, logged like any request
      await logged;
      return parse();
    },
    mark: () => {
      from = log.length;
    },
  };
}
