// Human progress goes to stderr so that stdout stays clean for --json output.
import { performance } from 'node:perf_hooks';

let debugEnabled = process.env.OST_IMAGES_DEBUG === '1';
let quiet = false;

export function configureLog(opts: { debug?: boolean; quiet?: boolean }): void {
  if (opts.debug !== undefined) debugEnabled = opts.debug;
  if (opts.quiet !== undefined) quiet = opts.quiet;
}

export function isDebug(): boolean {
  return debugEnabled;
}

const start = performance.now();

function stamp(): string {
  const s = (performance.now() - start) / 1000;
  return `[${s.toFixed(1).padStart(6)}s]`;
}

export const log = {
  debug(msg: string): void {
    if (debugEnabled) process.stderr.write(`${stamp()} debug: ${msg}\n`);
  },
  info(msg: string): void {
    if (!quiet) process.stderr.write(`${stamp()} ${msg}\n`);
  },
  warn(msg: string): void {
    process.stderr.write(`${stamp()} warning: ${msg}\n`);
  },
  error(msg: string): void {
    process.stderr.write(`error: ${msg}\n`);
  },
};
