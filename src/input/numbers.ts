// Numbers users give: every numeric option and setting goes through parseNumber (options) or
// numberProblem (values from a settings file), each with a rule saying what it is, whether it is
// whole, and its range. The same value is then refused alike wherever it is taken (prune, promote,
// nightly, publish, the CI settings), before any work: `--keep-used-within` with 400 digits reads
// as Infinity in JavaScript, which would otherwise pass "> 0" and fail only hours later.
import { UsageError, describeValue, quote } from '../core/errors.js';

export interface NumberRule {
  /** What the value is, as a message says it: 'a positive whole number', 'a positive number of days'. */
  what: string;
  /** Only whole numbers (counts, seconds); else a decimal fraction is fine (0.5 days). */
  whole: boolean;
  /** The smallest value allowed; with `above`, the value must be greater than it. */
  min: number;
  above?: boolean;
  /** The largest value allowed: what still makes sense (and what the code using it can hold). */
  max: number;
}

/** Builds of every top layer kept by retention (also staging's, the store's): more is never meant. */
export const KEEP: NumberRule = { what: 'a positive whole number', whole: true, min: 1, max: 1000 };
/** `--keep-used-within`: days, fractions allowed (0.5 is twelve hours), at most ten years. */
export const DAYS: NumberRule = { what: 'a positive number of days', whole: false, min: 0, above: true, max: 3650 };
/**
 * Timeouts: whole seconds up to a week. Also what a timer can hold: Node's setTimeout takes at
 * most 2^31-1 ms (24.8 days) and fires at once beyond it.
 */
export const SECONDS: NumberRule = { what: 'a positive whole number of seconds', whole: true, min: 1, max: 7 * 86400 };
/** rsync --bwlimit, KiB/s. */
export const KIB_PER_S: NumberRule = { what: 'a positive whole number of KiB/s', whole: true, min: 1, max: 999_999_999 };
/** Virtual CPUs of a VM. */
export const CPUS: NumberRule = { what: 'a whole number of virtual CPUs', whole: true, min: 1, max: 64 };

const WHOLE = /^[0-9]+$/;
const DECIMAL = /^[0-9]+(\.[0-9]+)?$/;

/** The rule in words, range included: `a positive whole number (1 to 1000)`. */
export function describeRule(r: NumberRule): string {
  const range = r.above ? `more than ${r.min}, at most ${r.max}` : `${r.min} to ${r.max}`;
  return `${r.what} (${range})`;
}

function inRange(n: number, r: NumberRule): boolean {
  return Number.isFinite(n) && (!r.whole || Number.isInteger(n)) && (r.above ? n > r.min : n >= r.min) && n <= r.max;
}

/**
 * Why `text` is not a number the rule allows, or undefined. Plain decimal digits only (no sign,
 * exponent, hex or white space: what a person types), then the range.
 */
export function textNumberProblem(text: string, r: NumberRule): string | undefined {
  const ok = (r.whole ? WHOLE : DECIMAL).test(text) && inRange(Number(text), r);
  return ok ? undefined : `is not ${describeRule(r)}`;
}

/**
 * A value from a settings file (YAML: a number, or a string where a number was meant), as
 * "must be ..., got ..."; undefined when the rule allows it. Strings are refused: the settings file
 * is typed, and a quoted number is a mistake worth saying.
 */
export function numberProblem(v: unknown, r: NumberRule): string | undefined {
  if (typeof v === 'number' && inRange(v, r)) return undefined;
  return `must be ${describeRule(r)}, got ${describeValue(v)}`;
}

/** An option's value; bad input (UsageError, exit 2) naming the option, the value and the rule. */
export function parseNumber(option: string, text: string, r: NumberRule): number {
  const problem = textNumberProblem(text, r);
  if (problem) throw new UsageError(`${option}: ${quote(text)} ${problem}`);
  return Number(text);
}

/** parseNumber for an option that may be absent. */
export function parseOptionalNumber(option: string, text: string | undefined, r: NumberRule): number | undefined {
  return text === undefined ? undefined : parseNumber(option, text, r);
}

/** Memory of a VM: `2048` (MiB), `512M`, `2G`, `2GiB`; from 64 MiB to 1 TiB. */
export function parseMiB(option: string, text: string): number {
  const m = /^([0-9]{1,7})\s*(M|MiB|MB|G|GiB|GB)?$/i.exec(text.trim());
  const mib = m ? Number(m[1]) * (/^g/i.test(m[2] ?? '') ? 1024 : 1) : NaN;
  if (!m) throw new UsageError(`${option}: ${quote(text)} is not a size (e.g. 2048, 512M, 2G)`);
  if (mib < 64) throw new UsageError(`${option}: ${mib} MiB is too little for a VM (64 MiB at least)`);
  if (mib > 1024 * 1024) throw new UsageError(`${option}: ${quote(text)} is more than 1 TiB`);
  return mib;
}
