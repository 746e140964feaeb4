// Start-up registers only the group of the command asked for (every group, the ci group without
// its generators, for the program's own help): the help a user sees must be what the whole
// program says, for the program and for every command, word for word.
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli.js';
import { COMMAND_TOOLS } from '../../src/commands/tools.js';
import { cli } from '../helpers/cli.js';

/** Every command below the program, groups too, by path (`vm`, `vm create`). */
function commandPaths(c: Command, prefix: string[] = []): string[][] {
  return c.commands.flatMap((s) => {
    const p = [...prefix, s.name()];
    return [p, ...commandPaths(s, p)];
  });
}

/** The help `--help` prints, from the program with every group registered in full. */
function helpOf(cmd: Command): string {
  let out = '';
  cmd.configureOutput({ writeOut: (s) => (out += s), getOutHelpWidth: () => 80 });
  cmd.outputHelp();
  return out;
}

function find(program: Command, p: string[]): Command {
  return p.reduce((c, name) => c.commands.find((s) => s.name() === name)!, program);
}

describe('help', async () => {
  const full = await buildProgram();
  it('the whole program: every command, the generators of ci too', () => {
    const leaves = commandPaths(full).filter((p) => find(full, p).commands.length === 0).map((p) => p.join(' '));
    expect(leaves.sort()).toEqual(Object.keys(COMMAND_TOOLS).sort());
  });

  it('of the program: the same as the whole program says', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(helpOf(full));
  });

  it.each(commandPaths(full).map((p) => [p.join(' '), p] as const))('of `%s`: the same as the whole program says', async (_name, p) => {
    const r = await cli([...p, '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(helpOf(find(full, p)));
  });

  it('`help <command>` shows the command\'s help', async () => {
    const r = await cli(['help', 'build']);
    expect(r.stdout).toBe(helpOf(find(full, ['build'])));
  });
});
