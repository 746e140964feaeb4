// A real HTTP server on 127.0.0.1 serving a directory (Python's http.server: it follows the
// repository's repodata symlink exactly as a web server would).
import { spawn, type ChildProcess } from 'node:child_process';

export async function serveDirectory(dir: string): Promise<{ url: string; stop: () => void; child: ChildProcess }> {
  const child = spawn('python3', ['-u', '-m', 'http.server', '--bind', '127.0.0.1', '--directory', dir, '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`http.server did not start: ${out}`)), 10_000);
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
  child.stderr!.resume();
  return { url: `http://127.0.0.1:${port}/`, stop: () => child.kill(), child };
}
