// `ost-images doctor`: every host program each command runs (commands/tools.ts), found on this
// host or not, why it is needed and which package has it on apt and dnf hosts. The same rules are
// checked before a command does anything; doctor shows all of them at once, for every condition.
import type { Command } from 'commander';
import { writeStderr } from '../core/log.js';
import { ALL_TOOLS, type ToolName } from '../tools/registry.js';
import { packagesFor } from '../tools/requirements.js';
import { findTool, toolSearchPath } from '../tools/run.js';
import { emit } from './common.js';
import { COMMAND_TOOLS } from './tools.js';

export interface DoctorReport {
  /** The PATH programs are looked up on (the caller's, with /usr/sbin and /sbin added). */
  path: string;
  /** Every program some command runs. */
  tools: { tool: ToolName; found: string | null; why: string; debian: string; fedora: string; commands: string[] }[];
  commands: { command: string; rules: { when: string | null; optional: boolean; tools: { tool: ToolName; found: boolean }[] }[]; missing: ToolName[] }[];
  /** Programs a command requires (under some condition) that are not found. */
  missing: ToolName[];
  /** What installs the missing ones. */
  install: { debian: string | null; fedora: string | null };
}

export function doctorReport(): DoctorReport {
  const found = new Map<ToolName, string | undefined>();
  const where = (t: ToolName): string | undefined => {
    if (!found.has(t)) found.set(t, findTool(t));
    return found.get(t);
  };
  const usedBy = new Map<ToolName, Set<string>>();
  const commands = Object.entries(COMMAND_TOOLS).map(([command, rules]) => {
    const shown = rules.map((r) => ({
      when: r.when ?? null,
      optional: !!r.optional,
      tools: [...new Set(r.tools)].map((tool) => {
        if (!usedBy.has(tool)) usedBy.set(tool, new Set());
        usedBy.get(tool)!.add(command);
        return { tool, found: where(tool) !== undefined };
      }),
    }));
    const missing = [...new Set(shown.filter((r) => !r.optional).flatMap((r) => r.tools.filter((t) => !t.found).map((t) => t.tool)))];
    return { command, rules: shown, missing };
  });
  const tools = [...usedBy.keys()].sort().map((tool) => ({ tool, found: where(tool) ?? null, ...ALL_TOOLS[tool]!, commands: [...usedBy.get(tool)!] }));
  const missing = [...new Set(commands.flatMap((c) => c.missing))].sort();
  const p = packagesFor(missing);
  return {
    path: toolSearchPath(),
    tools,
    commands,
    missing,
    install: missing.length > 0 ? { debian: `apt-get install ${p.debian.join(' ')}`, fedora: `dnf install ${p.fedora.join(' ')}` } : { debian: null, fedora: null },
  };
}

/** For people: the commands with what each runs, then every program with its packages. */
export function renderDoctor(r: DoctorReport): string {
  const out: string[] = [`Host programs, looked up on PATH=${r.path}`, ''];
  if (r.missing.length === 0) out.push('Every program a command requires is installed.');
  else {
    out.push(`Missing: ${r.missing.join(', ')} (used by ${[...new Set(r.commands.filter((c) => c.missing.length > 0).map((c) => c.command))].join(', ')})`);
    out.push(`  Debian/Ubuntu: ${r.install.debian}`, `  Fedora/EL:     ${r.install.fedora}`);
  }
  out.push('', 'What each command runs (! missing, ? optional: used when installed):');
  for (const c of r.commands) {
    out.push(`  ${c.command}${c.rules.length === 0 ? ': nothing' : c.missing.length > 0 ? `: MISSING ${c.missing.join(' ')}` : ''}`);
    for (const rule of c.rules) {
      const tools = rule.tools.map((t) => `${t.found ? '' : '!'}${rule.optional ? '?' : ''}${t.tool}`).join(' ');
      out.push(`    ${rule.when ?? 'always'}: ${tools}`);
    }
  }
  out.push('', 'Programs:');
  const rows = [['program', 'found at', 'apt package', 'dnf package', 'needed for'], ...r.tools.map((t) => [t.tool, t.found ?? 'MISSING', t.debian, t.fedora, t.why])];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) out.push(`  ${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(w[i]!))).join('  ')}`);
  return `${out.join('\n')}\n`;
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('list the host programs every command runs: found on this host or not, why each is needed, and its package on apt and dnf hosts (the same check runs before each command)')
    .option('--json', 'machine-readable report on stdout')
    .addHelpText(
      'after',
      `
Every command checks the programs it needs with its options (and the layer set's bases) before
it does anything, and names every missing one at once (exit 2). Doctor lists them all, for every
option; it exits 0 either way.`,
    )
    .action((o: { json?: boolean }) => {
      const r = doctorReport();
      // For people on stderr, like every other command's listing; --json is the machine's form.
      emit(o, r, () => writeStderr(renderDoctor(r)));
    });
}
