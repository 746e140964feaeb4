// What a command needs from the host, checked before it does anything (as mkosi checks its host
// tools before a build). Each command declares rules (commands/tools.ts): programs it runs, each
// rule in force always or under a condition on its options, the environment or the layer set it
// works on. `checkTools` looks every program of the rules in force up on run()'s PATH, without
// starting anything, and reports all the missing ones at once, each with what it is needed for
// and the package that has it on apt and dnf hosts (ToolsMissingError, exit 2: nothing was done).
// `ost-images doctor` shows every rule of every command, present or not. What a rule reads of the
// layer set is the declaring side's business (S: the layer set's type, kept out of this floor).
import { ToolsMissingError } from '../core/errors.js';
import { ALL_TOOLS, type ToolInfo, type ToolName } from './registry.js';
import { findTool } from './run.js';

/** A command's options, as commander hands them to its action. */
export type Options = Record<string, unknown>;

export interface ToolRule<S = never> {
  tools: readonly ToolName[];
  /** When the rule is in force, in words (doctor prints it, the error repeats it); absent: always. */
  when?: string;
  /** Whether the rule is in force for these options and this environment; absent: always. */
  if?: (o: Options, env: NodeJS.ProcessEnv) => boolean;
  /** For which layer sets it is in force (the set is read only when `if` holds); absent: all. */
  ifSet?: (set: S, o: Options) => boolean;
  /** Used when installed: the command works without it. Doctor lists it; the check does not demand it. */
  optional?: boolean;
}

/** One program a run needs, and the first rule in force that asks for it. */
export interface Need<S = never> {
  tool: ToolName;
  rule: ToolRule<S>;
}

/**
 * The programs the rules in force ask for, each once, in the order the rules name them.
 * `loadSet` is called only when a rule in force depends on the set.
 */
export async function toolsNeeded<S>(rules: readonly ToolRule<S>[], o: Options, env: NodeJS.ProcessEnv, loadSet: () => Promise<S>): Promise<Need<S>[]> {
  const needs = new Map<ToolName, Need<S>>();
  for (const rule of rules) {
    if (rule.optional || (rule.if && !rule.if(o, env))) continue;
    if (rule.ifSet && !rule.ifSet(await loadSet(), o)) continue;
    for (const tool of rule.tools) if (!needs.has(tool)) needs.set(tool, { tool, rule });
  }
  return [...needs.values()];
}

/** The packages that hold `tools` on apt and dnf hosts, each named once. */
export function packagesFor(tools: readonly ToolName[]): { debian: string[]; fedora: string[] } {
  const infos: ToolInfo[] = tools.map((t) => ALL_TOOLS[t]!);
  return { debian: [...new Set(infos.map((i) => i.debian))], fedora: [...new Set(infos.map((i) => i.fedora))] };
}

/** The message of a run that cannot start: every missing program, why, and what installs it. */
export function missingToolsMessage<S>(command: string, missing: readonly Need<S>[]): string {
  const lines = missing.map(({ tool, rule }) => {
    const info = ALL_TOOLS[tool]!;
    return `  ${tool}: ${info.why}${rule.when ? ` (needed ${rule.when})` : ''}; package ${info.debian} (apt), ${info.fedora} (dnf)`;
  });
  const p = packagesFor(missing.map((m) => m.tool));
  return (
    `\`ost-images ${command}\` needs ${missing.length === 1 ? 'a program that is' : `${missing.length} programs that are`} not installed (nothing was done):\n` +
    `${lines.join('\n')}\n` +
    `Install with 'apt-get install ${p.debian.join(' ')}' (Debian/Ubuntu) or 'dnf install ${p.fedora.join(' ')}' (Fedora/EL), or run scripts/install-deps; ` +
    '`ost-images doctor` lists what every command needs.'
  );
}

/** Throws ToolsMissingError naming every program the rules in force need and PATH lacks. */
export async function checkTools<S>(command: string, rules: readonly ToolRule<S>[], o: Options, env: NodeJS.ProcessEnv, loadSet: () => Promise<S>): Promise<void> {
  const missing = (await toolsNeeded(rules, o, env, loadSet)).filter((n) => findTool(n.tool) === undefined);
  if (missing.length > 0) throw new ToolsMissingError(missingToolsMessage(command, missing));
}
