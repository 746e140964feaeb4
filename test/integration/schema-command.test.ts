// `ost-images schema` as users meet it: the schema of a kind on stdout (the committed file's very
// bytes), the kinds without one, --out through the project's regular-file writer, and bad input
// (an unknown kind, --out without a kind, --out at a link) as exit 2 with nothing written.
import { existsSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SCHEMAS, SCHEMA_KINDS } from '../../src/commands/schema.js';
import { PROJECT_ROOT } from '../../src/core/paths.js';
import { cli } from '../helpers/cli.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('schema-command');
afterAll(() => removeTree(tmp));
const committed = (kind: keyof typeof SCHEMAS) => readFileSync(path.join(PROJECT_ROOT, SCHEMAS[kind].committed), 'utf8');

describe('ost-images schema', () => {
  it.each(SCHEMA_KINDS)('schema %s prints the committed schema file, byte for byte', async (kind) => {
    const r = await cli(['schema', kind]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(committed(kind));
    expect(JSON.parse(r.stdout).$schema).toBe('http://json-schema.org/draft-07/schema#');
  });

  it('without a kind: the kinds, what each describes and where the repository keeps it', async () => {
    const r = await cli(['schema']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[0])).toEqual(['set', 'layer', 'ci']);
    expect(r.stdout).toContain('schemas/layer.schema.json');
    const j = await cli(['schema', '--json']);
    expect(JSON.parse(j.stdout)).toEqual(SCHEMA_KINDS.map((k) => ({ kind: k, describes: SCHEMAS[k].describes, committed: SCHEMAS[k].committed })));
  });

  it('--out writes the file (a new one, or replacing a regular file)', async () => {
    const out = path.join(tmp, 'set.schema.json');
    writeFileSync(out, 'old\n');
    const r = await cli(['schema', 'set', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(readFileSync(out, 'utf8')).toBe(committed('set'));
  });

  it('bad input: exit 2, nothing written', async () => {
    const target = path.join(tmp, 'target');
    writeFileSync(target, 'keep me\n');
    const link = path.join(tmp, 'link.json');
    symlinkSync(target, link);
    const cases: [string[], RegExp][] = [
      [['schema', 'nope'], /'nope' is invalid for argument 'kind'\. Allowed choices are set, layer, ci/],
      [['schema', '--out', path.join(tmp, 'x.json')], /--out writes one schema: name its kind \(set, layer, ci\)/],
      [['schema', 'ci', '--out', link], /--out: '.*link\.json' is a symbolic link; --out writes only a regular file/],
      [['schema', 'ci', '--out', path.join(tmp, 'no', 'such', 'dir', 'ci.json')], /--out: '.*ci\.json': does not exist/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect([args, r.code]).toEqual([args, 2]);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain('    at ');
    }
    expect(readlinkSync(link)).toBe(target);
    expect(readFileSync(target, 'utf8')).toBe('keep me\n');
    expect(existsSync(path.join(tmp, 'x.json'))).toBe(false);
  });

  it('--help says where the schemas are and how the shipped files name them', async () => {
    const r = await cli(['schema', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('# yaml-language-server: $schema=../../../schemas/layer.schema.json');
    expect(r.stdout).toContain('set, layer or ci');
  });
});
