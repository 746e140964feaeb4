// Where each command is documented: the page under docs/ (and the section in it) that its --help
// names on its last line, so that --help and the docs point at each other. One table for every
// command, kept complete by test/unit/docs.test.ts (every command has a page, every page and
// section exists).
import type { Command } from 'commander';

/** A page of docs/ and, optionally, the heading of the section the command is described in. */
export interface DocRef {
  page: string;
  section?: string;
}

/**
 * By command path (`vm create`, `ci layer`). A subcommand not named here takes its group's entry
 * (`vm ssh` -> `vm`).
 */
export const COMMAND_DOCS: Readonly<Record<string, readonly DocRef[]>> = {
  validate: [{ page: 'layer-sets.md', section: 'Validation' }],
  schema: [{ page: 'layer-sets.md', section: 'Schemas for editors' }],
  plan: [{ page: 'design.md', section: 'plan and build' }],
  build: [
    { page: 'design.md', section: 'Incremental builds' },
    { page: 'packages.md', section: 'Custom-package layers' },
  ],
  package: [{ page: 'packages.md' }],
  diff: [{ page: 'packages.md', section: 'What a layer changed' }],
  manifest: [{ page: 'packages.md', section: 'Build manifest' }],
  publish: [{ page: 'repository.md' }],
  prune: [
    { page: 'repository.md', section: 'Retention' },
    { page: 'repository.md', section: 'Retention by use' },
  ],
  usage: [{ page: 'repository.md', section: 'Retention by use' }],
  mirror: [{ page: 'repository.md', section: 'Mirrors' }],
  install: [{ page: 'test-machines.md', section: 'Trying a repository: install, verify, test-boot' }],
  verify: [
    { page: 'test-machines.md', section: 'Trying a repository: install, verify, test-boot' },
    { page: 'reproducible.md', section: 'Checking a build' },
  ],
  'test-boot': [{ page: 'test-machines.md', section: 'Trying a repository: install, verify, test-boot' }],
  cache: [{ page: 'design.md', section: 'Trimming the store' }],
  all: [{ page: 'ci.md', section: 'ost-images all' }],
  nightly: [{ page: 'ci.md', section: 'The nightly job' }],
  ci: [{ page: 'ci.md', section: 'The nightly on CI runners' }],
  'ci layer': [{ page: 'ci.md', section: 'The layer job' }],
  'ci boot': [{ page: 'ci.md', section: 'The boot job' }],
  promote: [{ page: 'ci.md', section: 'Promotion' }],
  'remove-old': [{ page: 'test-machines.md', section: 'Removing old builds' }],
  images: [{ page: 'test-machines.md', section: 'ost-images images' }],
  vm: [{ page: 'test-machines.md', section: 'ost-images vm' }],
  doctor: [{ page: 'design.md', section: 'Host programs: checked first, listed by `doctor`' }],
};

/** The command's path below the program: `vm create`, `ci layer`, `publish`. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** The docs of a command: its own entry, else its group's. */
export function docsOf(cmd: Command): readonly DocRef[] | undefined {
  for (let c: Command | null = cmd; c?.parent; c = c.parent) {
    const refs = COMMAND_DOCS[commandPath(c)];
    if (refs) return refs;
  }
  return undefined;
}

/** The help's closing line(s): `See docs/repository.md ("Mirrors").`, one page a line. */
export function docsLine(refs: readonly DocRef[]): string {
  return `See ${refs.map((r) => `docs/${r.page}${r.section ? ` ("${r.section}")` : ''}`).join('\nand ')}.`;
}

/** Adds the docs line to the help of every command below `program` that has docs. */
export function addDocsToHelp(program: Command): void {
  for (const cmd of program.commands as Command[]) {
    const refs = docsOf(cmd);
    if (refs) cmd.addHelpText('after', `\n${docsLine(refs)}`);
    addDocsToHelp(cmd);
  }
}
