// Every failure the CLI reports is one of these; cli.ts maps them to fixed exit codes:
//   2 bad input (definitions, arguments, conflicting repository contents, host programs missing)
//   1 a build, package, publish or verification step failed
//   130 interrupted (SIGINT/SIGTERM)

export const EXIT_FAILED = 1;
export const EXIT_BAD_INPUT = 2;
export const EXIT_INTERRUPTED = 130;

export abstract class OstError extends Error {
  abstract readonly exitCode: number;
}

/** One problem in one definition file, located by key path (and line when the parser knows it). */
export interface ConfigIssue {
  file: string;
  path: string;
  message: string;
  line?: number;
}

export function formatIssue(i: ConfigIssue): string {
  const where = i.line !== undefined ? `${i.file}:${i.line}` : i.file;
  // A folder name can hold a newline or an escape sequence too.
  return `${escapeControl(where)}: ${i.path || '(top level)'}: ${i.message}`;
}

/** Values quoted in messages are cut to this many characters. */
export const QUOTE_MAX = 60;

// C0 and C1 control characters, DEL, the line and paragraph separators, the bidirectional
// overrides and isolates (they reorder what a terminal shows), and a byte-order mark.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Text with every character a terminal would act on (or hide) written as an escape: \n, \x1b, \u202e. */
export function escapeControl(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.codePointAt(0)!;
    return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
  });
}

/**
 * A user's value as it appears in a message: quoted, control characters escaped, and cut after
 * QUOTE_MAX characters with its full length said (`'aaaa…' (300 characters)`), so a binary file
 * or a pasted log cannot flood the terminal.
 */
export function quote(value: string, q = "'", max = QUOTE_MAX): string {
  const chars = Array.from(value);
  if (chars.length <= max) return `${q}${escapeControl(value)}${q}`;
  return `${q}${escapeControl(chars.slice(0, max).join(''))}…${q} (${chars.length} characters)`;
}

/** Like quote, but keeps both ends: for derived file names, whose end says what the file is. */
export function quoteMiddle(value: string, q = "'"): string {
  const chars = Array.from(value);
  if (chars.length <= QUOTE_MAX) return `${q}${escapeControl(value)}${q}`;
  const head = Math.floor(QUOTE_MAX / 3);
  return `${q}${escapeControl(chars.slice(0, head).join(''))}…${escapeControl(chars.slice(chars.length - (QUOTE_MAX - head)).join(''))}${q}`;
}

/** Invalid input. Carries every issue found, never only the first. */
export class ConfigError extends OstError {
  readonly exitCode = EXIT_BAD_INPUT;
  constructor(readonly issues: ConfigIssue[], summary = 'invalid layer set') {
    super(`${summary}:\n${issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`);
  }
}

/** A wrong command-line argument or a request that cannot be satisfied as asked. */
export class UsageError extends OstError {
  readonly exitCode = EXIT_BAD_INPUT;
}

/** An external program exited non-zero or was killed. */
export class ToolError extends OstError {
  readonly exitCode = EXIT_FAILED;
  constructor(
    readonly tool: string,
    readonly argv: string[],
    readonly outcome: { exitCode?: number; signal?: string },
    readonly stderrTail: string,
  ) {
    const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with code ${outcome.exitCode}`;
    const tail = stderrTail.trim() ? `\n--- last lines of its output ---\n${stderrTail.trimEnd()}` : '';
    super(`${tool} ${how}: ${argv.join(' ')}${tail}`);
  }
}

/** A host program the requested work needs is not installed. */
export class ToolMissingError extends OstError {
  readonly exitCode = EXIT_FAILED;
}

/**
 * Host programs a command needs are not installed, found before it did anything (tools/
 * requirements.ts): bad input in the sense of exit 2, a host that cannot run the request as asked.
 * The message names every one, what it is for and its package on apt and dnf hosts.
 */
export class ToolsMissingError extends OstError {
  readonly exitCode = EXIT_BAD_INPUT;
}

/** A step failed for a reason that is not a tool's exit status (a timeout, a failed check). */
export class StepError extends OstError {
  readonly exitCode = EXIT_FAILED;
}

export class InterruptedError extends OstError {
  readonly exitCode = EXIT_INTERRUPTED;
  constructor(signal: string) {
    super(`interrupted by ${signal}`);
  }
}

/** How a value of the wrong type is described in a config message: `string "arch"`, `number 5`, `a list`. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string ${quote(v, '"')}`;
  return `${typeof v} ${quote(String(v), '')}`;
}
