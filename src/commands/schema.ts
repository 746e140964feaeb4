// `ost-images schema`: the JSON Schemas of the files a person writes (set.yaml, layer.yaml,
// ci.yaml), as the validation kernel checks them, for editors to complete and check against. The
// repository commits them under schemas/ (a unit test keeps them equal to what this prints), and
// the shipped files name theirs in a yaml-language-server modeline on their first line.
import { Argument, type Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fsutil.js';
import { log } from '../core/log.js';
import { CI_KIND } from '../ci/settings.js';
import type { JsonSchema } from '../definitions/kernel.js';
import { LAYER_KIND } from '../definitions/layer-checks.js';
import { SET_KIND } from '../definitions/set-checks.js';
import { writeOutputFile } from '../input/paths.js';
import { emit } from './common.js';

export const SCHEMA_KINDS = ['set', 'layer', 'ci'] as const;
export type SchemaKind = (typeof SCHEMA_KINDS)[number];

/**
 * Each kind: the schema validation checks it against (the kernel's kind, so what is exported is
 * what is enforced), the files it describes, and where the repository commits it.
 */
export const SCHEMAS: Record<SchemaKind, { schema: JsonSchema; describes: string; committed: string }> = {
  set: { schema: SET_KIND.schema, describes: 'layers/<set>/set.yaml', committed: 'schemas/set.schema.json' },
  layer: { schema: LAYER_KIND.schema, describes: 'layers/<set>/<layer>/layer.yaml', committed: 'schemas/layer.schema.json' },
  ci: { schema: CI_KIND.schema, describes: 'ci.yaml (or ci gitlab|github --config FILE)', committed: 'schemas/ci.schema.json' },
};

/** The text `ost-images schema <kind>` prints, byte for byte what schemas/<kind>.schema.json holds. */
export function schemaText(kind: SchemaKind): string {
  return `${JSON.stringify(SCHEMAS[kind].schema, null, 2)}\n`;
}

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('print the JSON Schema of set.yaml, layer.yaml or ci.yaml, for editors to complete and check them (without a kind: which there are)')
    .addArgument(new Argument('[kind]', 'which file: set, layer or ci').choices(SCHEMA_KINDS))
    .option('-o, --out <file>', 'write it to this file (atomically; a regular file only) instead of stdout')
    .option('--json', 'machine-readable list of the kinds on stdout (without a kind)')
    .addHelpText(
      'after',
      `
The repository commits them as schemas/set.schema.json, schemas/layer.schema.json and
schemas/ci.schema.json; the shipped files name theirs on their first line, for editors with the
YAML language server (VS Code's YAML extension, and others):
  # yaml-language-server: $schema=../../../schemas/layer.schema.json     (layers/<set>/<layer>/layer.yaml)
  # yaml-language-server: $schema=../../schemas/set.schema.json          (layers/<set>/set.yaml)
  # yaml-language-server: $schema=./schemas/ci.schema.json               (ci.yaml)
A schema says structure, types and the shape of names; validate says the rest (files, URLs, the
layer graph, name lengths).`,
    )
    .action((kind: SchemaKind | undefined, o: { out?: string; json?: boolean }) => {
      if (kind === undefined) {
        if (o.out !== undefined) throw new UsageError(`--out writes one schema: name its kind (${SCHEMA_KINDS.join(', ')})`);
        const kinds = SCHEMA_KINDS.map((k) => ({ kind: k, describes: SCHEMAS[k].describes, committed: SCHEMAS[k].committed }));
        emit(o, kinds, () => {
          for (const k of kinds) process.stdout.write(`${k.kind.padEnd(6)} ${k.describes.padEnd(44)} ${k.committed}\n`);
        });
        return;
      }
      const text = schemaText(kind);
      if (o.out === undefined) {
        process.stdout.write(text);
        return;
      }
      // Only a regular file, new or replaced by rename: never through a link, into a FIFO or a device.
      writeOutputFile('--out', o.out, (file) => writeFileAtomic(file, text));
      log.info(`wrote ${o.out}`);
    });
}
