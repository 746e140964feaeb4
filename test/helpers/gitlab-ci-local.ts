// Driving gitlab-ci-local (npm, shell executor, no Docker) on a scratch git repository, and reading
// its report: which job started and finished where (line numbers: an order, not a time) and what
// each job printed. Shared by the integration test on tiny sets and the end-to-end test on the real
// sets. gitlab-ci-local sees only committed files and copies the checkout into each job's build
// directory with rsync.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { BIN, ROOT } from './cli.js';
import { output } from './run.js';

export const GLCL = path.join(ROOT, 'node_modules', '.bin', 'gitlab-ci-local');

export interface PipelineRun {
  code: number | null;
  /** gitlab-ci-local's output, in the order it reported events (job started, output, finished). */
  lines: string[];
  text: string;
}

export class ScratchRepo {
  private readonly running = new Set<ChildProcess>();
  constructor(readonly dir: string) {}

  init(): void {
    mkdirSync(this.dir, { recursive: true });
    this.git('init', '-q', '-b', 'main');
  }

  git(...args: string[]): string {
    return execFileSync('git', ['-c', 'user.name=ost-images test', '-c', 'user.email=test@ost-images.invalid', ...args], { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  }

  write(files: Record<string, string>, under = 'layers'): void {
    for (const [rel, content] of Object.entries(files)) {
      const file = path.join(this.dir, under, rel);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, content, { mode: rel.endsWith('.sh') ? 0o755 : 0o644 });
    }
  }

  /** The pipeline as the real CLI generates it from the repository's layers/ and ci.yaml (asynchronously: no test blocks its worker). */
  async generate(): Promise<void> {
    await output(process.execPath, [BIN, 'ci', 'gitlab', '--config', 'ci.yaml', '--layers-dir', 'layers', '--out', '.gitlab-ci.yml'], { cwd: this.dir });
  }

  /**
   * Runs the committed pipeline. Every job gets its own store ("runner": XDG_CACHE_HOME inside the
   * job's build directory), so layers can only travel through staging. `boundMs` only ends a hang.
   */
  run(extra: string[], o: { concurrency?: number; boundMs: number; env?: Record<string, string>; /** Each line of its report as it arrives (colours stripped). */ onLine?: (line: string) => void }): Promise<PipelineRun> {
    const args = ['--shell-isolation', '--no-artifacts-to-source', '--concurrency', String(o.concurrency ?? 2), '--variable', 'XDG_CACHE_HOME=$CI_PROJECT_DIR/.runner', ...extra];
    // Its own process group: a hang is ended with everything it started (jobs, their CLIs, QEMU).
    const child = spawn(GLCL, args, { cwd: this.dir, env: { ...process.env, OST_IMAGES_KVM: '0', FORCE_COLOR: '0', NO_COLOR: '1', ...o.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.running.add(child);
    let text = '';
    // Lines of each stream on their own: a line may arrive in pieces.
    const take = () => {
      let partial = '';
      return (d: Buffer) => {
        text += d.toString();
        if (!o.onLine) return;
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop()!;
        for (const l of lines) o.onLine(l.replace(/\x1b\[[0-9;]*m/g, ''));
      };
    };
    child.stdout!.on('data', take());
    child.stderr!.on('data', take());
    const bound = setTimeout(() => process.kill(-child.pid!, 'SIGTERM'), o.boundMs);
    return new Promise((resolve) =>
      child.on('close', (code) => {
        clearTimeout(bound);
        this.running.delete(child);
        text = text.replace(/\x1b\[[0-9;]*m/g, '');
        resolve({ code, lines: text.split('\n'), text });
      }),
    );
  }

  /** Ends every pipeline still running (a failed or timed-out test), with all it started. */
  stopAll(): void {
    for (const child of this.running) {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // Already gone.
      }
    }
  }
}

/** Whether a line of gitlab-ci-local's report is `job`'s (it pads job names to one width). */
const ofJob = (line: string, job: string, what: string): boolean => line.startsWith(job) && new RegExp(`^ +${what}`).test(line.slice(job.length));

/** Where in gitlab-ci-local's report a job started and finished (line numbers: an order, not a time). */
export function jobSpan(run: PipelineRun, job: string): { start: number; end: number } {
  const start = run.lines.findIndex((l) => ofJob(l, job, 'starting shell'));
  const end = run.lines.findIndex((l) => ofJob(l, job, 'finished in '));
  expect(start, `${job} started:\n${run.text}`).toBeGreaterThanOrEqual(0);
  expect(end, `${job} finished:\n${run.text}`).toBeGreaterThan(start);
  return { start, end };
}

/** A job's own output lines (gitlab-ci-local prefixes them with `<job>  > `). */
export const jobOutput = (run: PipelineRun, job: string): string =>
  run.lines
    .filter((l) => ofJob(l, job, '> '))
    .map((l) => l.slice(l.indexOf('> ', job.length) + 2))
    .join('\n');
