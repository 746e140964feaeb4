// The JSON Schemas editors check set.yaml, layer.yaml and ci.yaml against: the committed files are
// what `ost-images schema` prints now (a schema change without re-exporting fails here), a standard
// draft-07 validator reading them accepts every shipped file and rejects what validation rejects
// structurally, and every shipped file names the right one in its yaml-language-server modeline.
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { SCHEMAS, SCHEMA_KINDS, schemaText, type SchemaKind } from '../../src/commands/schema.js';
import { readCiConfig } from '../../src/ci/settings.js';
import { ConfigError } from '../../src/core/errors.js';
import { DEFAULT_LAYERS_DIR, PROJECT_ROOT } from '../../src/core/paths.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import { testTmp } from '../helpers/tmp.js';
import { VALID_SET, writeLayerSet } from '../helpers/layerset.js';

/** A validator as an editor's would be: the committed file, nothing of the kernel's. */
function committedValidator(kind: SchemaKind) {
  // errorMessage is an annotation editors read (VS Code's JSON and YAML services); strict mode
  // would refuse a keyword it does not know.
  const ajv = new Ajv({ allErrors: true, strict: false });
  return ajv.compile(JSON.parse(readFileSync(path.join(PROJECT_ROOT, SCHEMAS[kind].committed), 'utf8')));
}

/** Every shipped file of a kind, by path from the repository root. */
function shipped(kind: SchemaKind): string[] {
  if (kind === 'ci') return ['ci.yaml'];
  const sets = readdirSync(DEFAULT_LAYERS_DIR).filter((s) => statSync(path.join(DEFAULT_LAYERS_DIR, s)).isDirectory());
  const rel = (...p: string[]) => path.relative(PROJECT_ROOT, path.join(DEFAULT_LAYERS_DIR, ...p));
  if (kind === 'set') return sets.map((s) => rel(s, 'set.yaml'));
  return sets.flatMap((s) =>
    readdirSync(path.join(DEFAULT_LAYERS_DIR, s))
      .filter((l) => statSync(path.join(DEFAULT_LAYERS_DIR, s, l)).isDirectory())
      .map((l) => rel(s, l, 'layer.yaml')),
  );
}

describe('the committed schemas', () => {
  it.each(SCHEMA_KINDS)('schemas/%s.schema.json is what `ost-images schema` prints now', (kind) => {
    // On failure: ost-images schema <kind> --out schemas/<kind>.schema.json
    expect(readFileSync(path.join(PROJECT_ROOT, SCHEMAS[kind].committed), 'utf8')).toBe(schemaText(kind));
  });

  it.each(SCHEMA_KINDS)('%s: every key is described', (kind) => {
    const undescribed: string[] = [];
    const walk = (node: Record<string, unknown>, at: string): void => {
      for (const [key, sub] of Object.entries((node.properties ?? {}) as Record<string, Record<string, unknown>>)) {
        if (typeof sub.description !== 'string' || sub.description.length < 10) undescribed.push(`${at}.${key}`);
        walk(sub, `${at}.${key}`);
        if (sub.items) walk(sub.items as Record<string, unknown>, `${at}.${key}[]`);
      }
    };
    walk(SCHEMAS[kind].schema as Record<string, unknown>, '');
    expect(undescribed).toEqual([]);
  });
});

describe('a standard validator reading the committed schemas', () => {
  it.each(SCHEMA_KINDS)('accepts every shipped %s file', (kind) => {
    const validate = committedValidator(kind);
    const files = shipped(kind);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      validate(parse(readFileSync(path.join(PROJECT_ROOT, f), 'utf8')) ?? {});
      expect([f, validate.errors ?? []]).toEqual([f, []]);
    }
  });

  it('accepts values at the edges of what validation accepts (a pattern never refuses what the rules allow)', () => {
    const { layersDir, setDir } = writeLayerSet({
      ...VALID_SET,
      'set.yaml': `${VALID_SET['set.yaml']}image: {size: " 16T "}\nsource_date: 2026-12-01T06:00:00Z\nssh_key: {env: _K9}\n`.replace('"12"', '"1.0~rc1^git+x_y"').replace('prefix: ost-images', 'prefix: A.b_c+d-9\n  payload: w.ufdio\n  install_dir: /opt/x.y_z+1-2'),
      'base/layer.yaml': 'base:\n  mmdebstrap: {packages: [g++, libc6.1], suites: [stable-updates], components: [non-free/firmware]}\n  hostname: a-9\n  kernel_cmdline: ["console=ttyS0,115200", a/b+c:d.e_f]\n',
      'app/layer.yaml': 'parent: base\nsteps:\n  - upload: {from: go.sh, to: /x, mode: "644"}\nknown_differences:\n  - {path: "/var/**/x@y:~*", why: "z"}\n',
    });
    // What validation takes, the schemas take.
    expect(() => loadLayerSet(layersDir, 'demo')).not.toThrow();
    for (const [kind, file] of [['set', 'set.yaml'], ['layer', 'base/layer.yaml'], ['layer', 'app/layer.yaml']] as const) {
      const validate = committedValidator(kind);
      validate(parse(readFileSync(path.join(setDir, file), 'utf8')));
      expect([file, validate.errors ?? []]).toEqual([file, []]);
    }
  });

  // kind, the file, what validation says (structurally: each of these is the schema's to say).
  const structural: [SchemaKind, string, string][] = [
    ['set', `${VALID_SET['set.yaml']}colour: blue\n`, "unknown key 'colour'"],
    ['set', VALID_SET['set.yaml'].replace('package:\n  prefix: ost-images\n  default: true\n', ''), "missing required key 'package'"],
    ['set', VALID_SET['set.yaml'].replace('family: debian', 'family: arch'), 'must be one of "debian", "el"'],
    ['set', VALID_SET['set.yaml'].replace('default: true', 'default: "yes"'), 'must be a boolean'],
    ['set', `${VALID_SET['set.yaml']}flatten: [app, app]\n`, "lists 'app' twice"],
    ['set', VALID_SET['set.yaml'].replace('"12"', '"12-1"'), 'is not a valid RPM version'],
    ['set', `${VALID_SET['set.yaml']}image: {size: 8GB}\n`, 'must be a size from 1G to 16T'],
    ['layer', 'parent: base\nsteps:\n  install: curl\n', 'must be a list, got a mapping'],
    ['layer', 'parent: base\nsteps:\n  - install: [curl]\n    upgrade: true\n', 'a step has exactly one of'],
    ['layer', 'parent: base\nsteps:\n  - {}\n', 'a step has exactly one of'],
    ['layer', 'parent: base\nsteps:\n  - upgrade: false\n', 'must be true'],
    ['layer', 'parent: base\nsteps:\n  - install: []\n', 'must not be empty'],
    ['layer', 'parent: base\nsteps:\n  - upload: {from: go.sh}\n', "missing required key 'to'"],
    ['layer', 'parent: base\nsteps:\n  - upload: {from: go.sh, to: /x, mode: "0x644"}\n', 'must be an octal file mode'],
    ['layer', 'parent: base\nsteps:\n  - install: ["curl$(reboot)"]\n', 'is not a valid Debian package name'],
    ['layer', 'base:\n  image: {url: "https://example.org/x.qcow2", sha256: "ABC"}\n', 'is not a sha256'],
    ['layer', 'base:\n  mmdebstrap: {suites: ["--x"]}\n', 'is not a Debian suite name'],
    ['layer', 'base:\n  mmdebstrap: {variant: tiny}\n', 'must be one of "minbase"'],
    ['layer', 'base:\n  mmdebstrap: {}\n  hostname: Not_A_Host\n', 'is not a valid host name'],
    ['layer', 'paren: base\n', "unknown key 'paren' (did you mean 'parent'?"],
    ['ci', 'colour: blue\n', "unknown key 'colour'"],
    ['ci', 'keep: 0\n', 'must be a positive whole number'],
    ['ci', 'keep: "3"\n', 'must be a positive whole number'],
    ['ci', 'keep_used_within: 0\n', 'must be a positive number of days'],
    ['ci', 'repo: [a]\n', 'must be a mapping'],
    ['ci', 'staging:\n  dir: srv/staging\n', 'must be an absolute path of plain folder names'],
    ['ci', 'github:\n  runs_on: []\n', 'must not be empty'],
    ['ci', 'gitlab:\n  tags: [kvm, kvm]\n', "lists 'kvm' twice"],
    ['ci', 'cli: ""\n', 'must not be empty'],
  ];

  const dir = testTmp('schemas');
  /** What validation says of one file of the kind (the rest of the set valid). */
  function validationSays(kind: SchemaKind, text: string): string {
    try {
      if (kind === 'ci') {
        const file = path.join(dir, 'ci.yaml');
        writeFileSync(file, text);
        readCiConfig(file, 'github');
      } else {
        const { layersDir } = writeLayerSet({ ...VALID_SET, [kind === 'set' ? 'set.yaml' : 'app/layer.yaml']: text });
        loadLayerSet(layersDir, 'demo');
      }
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).message;
    }
    return '';
  }

  it.each(structural)('%s: %j is refused by validation and by the schema', (kind, text, says) => {
    expect(validationSays(kind, text)).toContain(says);
    const validate = committedValidator(kind);
    expect(validate(parse(text))).toBe(false);
  });
});

describe('the modelines of the shipped files', () => {
  it.each(SCHEMA_KINDS)('every shipped %s file names its schema on its first line, by a path that resolves to it', (kind) => {
    for (const f of shipped(kind)) {
      const first = readFileSync(path.join(PROJECT_ROOT, f), 'utf8').split('\n')[0]!;
      const m = /^# yaml-language-server: \$schema=(\S+)$/.exec(first);
      expect([f, m !== null]).toEqual([f, true]);
      // The language server resolves a relative path against the file's own folder.
      expect([f, path.resolve(path.dirname(path.join(PROJECT_ROOT, f)), m![1]!)]).toEqual([f, path.join(PROJECT_ROOT, SCHEMAS[kind].committed)]);
    }
  });
});

// The kernel compiles the schemas without checking them against the JSON Schema meta-schema at
// every start (definitions/kernel.ts, validateSchema: false): this is where they are checked.
describe('the schemas against the meta-schema', () => {
  it.each(SCHEMA_KINDS)('%s: valid against the meta-schema, and compiles in strict mode', (kind) => {
    const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
    ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });
    const schema = SCHEMAS[kind].schema as Record<string, unknown>;
    expect(ajv.validateSchema(schema), ajv.errorsText(ajv.errors)).toBe(true);
    expect(() => ajv.compile(schema)).not.toThrow();
  });
});
