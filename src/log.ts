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

/**
 * A progress line redrawn in place, only on a terminal and not with --quiet (CI logs get the
 * start and end lines instead of thousands of redraws). Returns update and done functions.
 */
export function progressLine(label: string): { update: (text: string) => void; done: () => void } {
  const live = !quiet && process.stderr.isTTY === true;
  let last = 0;
  let drawn = false;
  return {
    update(text: string) {
      if (!live || Date.now() - last < 200) return;
      last = Date.now();
      drawn = true;
      process.stderr.write(`\r\x1b[K${stamp()} ${label}: ${text}`);
    },
    done() {
      if (drawn) process.stderr.write('\r\x1b[K');
    },
  };
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
