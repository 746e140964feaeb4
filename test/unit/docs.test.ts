// The documentation kept honest by the tests: a short README that links every page under docs/,
// relative links (and their #sections) that lead somewhere, a source-layout table in
// docs/development.md that names every folder and top-level file of src/ and nothing that is gone,
// and --help and the docs pointing at each other: every command's help ends naming its page, and
// every option the README's command table shows exists on that command.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli.js';
import { COMMAND_DOCS, commandPath, docsLine, docsOf } from '../../src/commands/docs.js';
import { ROOT } from '../helpers/cli.js';

const README = path.join(ROOT, 'README.md');
const DOCS = path.join(ROOT, 'docs');
const MAX_README_LINES = 260;

const read = (file: string): string => readFileSync(file, 'utf8');
const docPages = (): string[] =>
  readdirSync(DOCS)
    .filter((f) => f.endsWith('.md'))
    .sort();
const markdownFiles = (): string[] => [README, ...docPages().map((f) => path.join(DOCS, f))];

/** The text outside fenced code blocks, line by line (headings and links in code do not count). */
function proseLines(text: string): string[] {
  let fenced = false;
  return text.split('\n').filter((line) => {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      return false;
    }
    return !fenced;
  });
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as '-'; repeats get -1, -2. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of proseLines(text)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]!
      .replace(/`/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Every relative link target of a Markdown file (code spans and blocks left out). */
function relativeLinks(text: string): string[] {
  const targets: string[] = [];
  for (const line of proseLines(text)) {
    const prose = line.replace(/`[^`]*`/g, '');
    for (const m of prose.matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) targets.push(target);
    }
  }
  return targets;
}

/** Every command below the program (commander's own `help` left out). */
function allCommands(cmd: Command): Command[] {
  return (cmd.commands as Command[]).filter((c) => c.name() !== 'help').flatMap((c) => [c, ...allCommands(c)]);
}

function helpOf(cmd: Command): string {
  let out = '';
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  cmd.outputHelp();
  return out;
}

describe('README', () => {
  it(`is short: at most ${MAX_README_LINES} lines; the rest is in docs/`, () => {
    const lines = read(README).split('\n').length;
    expect(lines, `README.md has ${lines} lines; move the detail into a page under docs/`).toBeLessThanOrEqual(MAX_README_LINES);
  });

  it('links every page under docs/', () => {
    const linked = new Set(relativeLinks(read(README)).map((t) => path.normalize(t.split('#')[0]!)));
    const unlinked = docPages().filter((p) => !linked.has(path.join('docs', p)));
    expect(unlinked, 'pages under docs/ that README.md does not link').toEqual([]);
  });

  it('keeps the two quick-start commands', () => {
    const text = read(README);
    expect(text).toMatch(/^scripts\/quickstart\s+#/m);
    expect(text).toMatch(/^scripts\/test\s+#/m);
  });
});

describe('links in README.md and docs/*.md', () => {
  it('every relative link points at a file that exists, and every #section at a heading in it', () => {
    const broken: string[] = [];
    for (const file of markdownFiles()) {
      for (const target of relativeLinks(read(file))) {
        const [where, section] = target.split('#') as [string, string | undefined];
        const dest = where === '' ? file : path.resolve(path.dirname(file), decodeURI(where));
        const from = path.relative(ROOT, file);
        let exists = true;
        try {
          statSync(dest);
        } catch {
          exists = false;
        }
        if (!exists) broken.push(`${from}: ${target}: no such file`);
        else if (section !== undefined && dest.endsWith('.md') && !anchors(read(dest)).has(section)) broken.push(`${from}: ${target}: no such section in ${path.relative(ROOT, dest)}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('every file of this repository a page names (`src/...`, `scripts/...`) exists', () => {
    const gone: string[] = [];
    for (const file of markdownFiles()) {
      for (const m of read(file).matchAll(/(?<![\w/.-])((?:src|test|scripts|specs|layers|docs)\/[\w./-]*\w)/g)) {
        try {
          statSync(path.join(ROOT, m[1]!));
        } catch {
          gone.push(`${path.relative(ROOT, file)}: ${m[1]}`);
        }
      }
    }
    expect(gone).toEqual([]);
  });

  it('the anchors are what GitHub makes of headings', () => {
    expect([...anchors("# A\n## The framework's way: fixed names\n```\n# not a heading\n```\n## `ost-images vm`\n## set.yaml\n## A\n")]).toEqual([
      'a',
      'the-frameworks-way-fixed-names',
      'ost-images-vm',
      'setyaml',
      'a-1',
    ]);
  });
});

describe('the source-layout table of docs/development.md', () => {
  /** The first cell of each row of the table under "## Source layout": `src/core/`, `src/cli.ts`. */
  function tableEntries(): string[] {
    const text = read(path.join(DOCS, 'development.md'));
    const section = text.split(/^## /m).find((s) => s.startsWith('Source layout'));
    expect(section, 'docs/development.md has a "## Source layout" section').toBeDefined();
    return [...section!.matchAll(/^\| `(src\/[^`]+)` \|/gm)].map((m) => m[1]!);
  }

  it('names every folder and every top-level file of src/, and nothing that is not there', () => {
    const actual = readdirSync(path.join(ROOT, 'src'))
      .map((e) => (statSync(path.join(ROOT, 'src', e)).isDirectory() ? `src/${e}/` : `src/${e}`))
      .sort();
    const named = tableEntries();
    expect(
      actual.filter((e) => !named.includes(e)),
      'in src/ but missing from the table in docs/development.md ("Source layout")',
    ).toEqual([]);
    expect(
      named.filter((e) => !actual.includes(e)),
      'named in docs/development.md ("Source layout") but not in src/',
    ).toEqual([]);
  });
});

// Every group registered in full, as the program's own help and the docs describe it.
const program = await buildProgram();

describe('--help and the docs', () => {
  const commands = allCommands(program);

  it('every command has a page, and its --help ends naming it', () => {
    const problems: string[] = [];
    for (const cmd of commands) {
      const refs = docsOf(cmd);
      if (!refs) {
        problems.push(`${commandPath(cmd)}: no entry in COMMAND_DOCS (src/commands/docs.ts)`);
        continue;
      }
      if (!helpOf(cmd).trimEnd().endsWith(docsLine(refs))) problems.push(`${commandPath(cmd)}: --help does not end with: ${docsLine(refs)}`);
    }
    expect(problems).toEqual([]);
  });

  it("every page and section a command's help names exists", () => {
    const problems: string[] = [];
    for (const [name, refs] of Object.entries(COMMAND_DOCS)) {
      for (const r of refs) {
        let text: string;
        try {
          text = read(path.join(DOCS, r.page));
        } catch {
          problems.push(`${name}: docs/${r.page} does not exist`);
          continue;
        }
        if (r.section !== undefined && !proseLines(text).some((l) => new RegExp(`^#{1,6}\\s+${r.section!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`).test(l))) {
          problems.push(`${name}: docs/${r.page} has no heading "${r.section}"`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('COMMAND_DOCS names only commands that exist', () => {
    const paths = new Set(commands.map(commandPath));
    expect(Object.keys(COMMAND_DOCS).filter((k) => !paths.has(k))).toEqual([]);
  });

  /** The README's command table: the first cell of each row, e.g. "`ost-images cache ls` / `cache gc [--keep N]`". */
  function readmeRows(): string[] {
    return proseLines(read(README))
      .filter((l) => l.startsWith('| `ost-images '))
      .map((l) => l.slice(2).split(/ \| /)[0]!);
  }

  it("the README's command table lists every command", () => {
    const listed = new Set(readmeRows().map((cell) => /^`ost-images ([a-z-]+)/.exec(cell)![1]!));
    const missing = (program.commands as Command[]).map((c) => c.name()).filter((n) => n !== 'help' && !listed.has(n));
    expect(missing, 'commands missing from the README command table').toEqual([]);
  });

  it("every option the README's command table shows exists on that command", () => {
    const globals = new Set(['--help', ...program.options.map((o) => o.long)]);
    const problems: string[] = [];
    for (const cell of readmeRows()) {
      const name = /^`ost-images ([a-z-]+)/.exec(cell)![1]!;
      const cmd = (program.commands as Command[]).find((c) => c.name() === name);
      if (!cmd) {
        problems.push(`${cell}: no command '${name}'`);
        continue;
      }
      // The command's own options and its subcommands' (`cache gc --keep`, `vm create --memory`).
      const known = new Set([...globals, ...[cmd, ...allCommands(cmd)].flatMap((c) => c.options.map((o) => o.long))]);
      for (const opt of cell.match(/--[a-z][a-z-]*/g) ?? []) if (!known.has(opt)) problems.push(`${name}: README shows ${opt}, which --help does not have`);
    }
    expect(problems).toEqual([]);
  });
});
