// Every failure the CLI reports is one of these; cli.ts maps them to fixed exit codes:
//   2 bad input (definitions, arguments, conflicting repository contents)
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
  return `${where}: ${i.path || '(top level)'}: ${i.message}`;
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
