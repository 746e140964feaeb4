// Human progress goes to stderr so that stdout stays clean for --json output. Every line passes
// through redactSecrets: a password in a URL a user gave (or a tool's argv quoting it) is never
// repeated into a CI log.
import { performance } from 'node:perf_hooks';
import { redactSecrets } from './redact.js';

/** Writes text for people to stderr, its secrets masked: the one way anything reaches stderr. */
export function writeStderr(text: string): void {
  process.stderr.write(redactSecrets(text));
}

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
      writeStderr(`\r\x1b[K${stamp()} ${label}: ${text}`);
    },
    done() {
      if (drawn) writeStderr('\r\x1b[K');
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
    if (debugEnabled) writeStderr(`${stamp()} debug: ${msg}\n`);
  },
  info(msg: string): void {
    if (!quiet) writeStderr(`${stamp()} ${msg}\n`);
  },
  warn(msg: string): void {
    writeStderr(`${stamp()} warning: ${msg}\n`);
  },
  error(msg: string): void {
    writeStderr(`error: ${msg}\n`);
  },
};
