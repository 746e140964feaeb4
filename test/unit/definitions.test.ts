// Validation of layer sets: a table of invalid sets with the exact messages a user sees.
import { symlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadLayerSet } from '../../src/definitions/load.js';
import { ConfigError, EXIT_BAD_INPUT, formatIssue } from '../../src/core/errors.js';
import { VALID_SET, writeLayerSet } from '../helpers/layerset.js';

/** Loads VALID_SET with some files replaced (undefined deletes); returns the messages. */
function messages(change: Record<string, string | undefined>): string[] {
  const files: Record<string, string> = { ...VALID_SET };
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) delete files[k];
    else files[k] = v;
  }
  const { layersDir, setDir } = writeLayerSet(files);
  try {
    loadLayerSet(layersDir, 'demo');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(EXIT_BAD_INPUT);
    return (err as ConfigError).issues.map((i) => formatIssue({ ...i, file: i.file.replace(`${setDir}/`, '') }));
  }
  return [];
}

const setYaml = VALID_SET['set.yaml'];

const table: [string, Record<string, string | undefined>, string[]][] = [
  ['unknown parent', { 'app/layer.yaml': 'parent: nope\n' }, ["app/layer.yaml:1: .parent: unknown parent layer 'nope' (layers in this set: app, base)"]],
  ['a cycle', { 'a/layer.yaml': 'parent: b\n', 'b/layer.yaml': 'parent: a\n' }, ['a/layer.yaml:1: .parent: layers form a cycle: a -> b -> a']],
  ['a missing script', { 'app/go.sh': undefined }, ["app/layer.yaml:4: .steps[1].run: script 'go.sh' does not exist in the layer folder"]],
  [
    'a script outside the layer folder',
    { 'app/layer.yaml': 'parent: base\nsteps:\n  - run: ../../etc/passwd\n' },
    ["app/layer.yaml:3: .steps[0].run: script '../../etc/passwd' must be a path inside the layer folder (no absolute path, no '..')"],
  ],
  [
    'a package name the distribution would reject',
    { 'app/layer.yaml': 'parent: base\nsteps:\n  - install: [curl, Curl_X]\n' },
    ["app/layer.yaml:3: .steps[0].install[1]: 'Curl_X' is not a valid Debian package name (lower-case letters, digits, + - .)"],
  ],
  [
    'a layer name RPM would reject',
    { 'My Layer/layer.yaml': 'parent: base\n' },
    ["My Layer: (top level): layer name 'My Layer' (the folder name) is not valid: use lower-case letters, digits and . _ + - (RPM would reject it in a package name)"],
  ],
  [
    'a package prefix RPM would reject',
    { 'set.yaml': setYaml.replace('prefix: ost-images', 'prefix: "ost images"') },
    ["set.yaml:8: .package.prefix: 'ost images' is not a valid RPM package name (letters, digits, . _ + -)"],
  ],
  [
    'a flattened variant of a layer the set does not have',
    { 'set.yaml': `${setYaml}flatten: [app, engine]\n` },
    ["set.yaml:10: .flatten[1]: 'engine' is not a layer of this set (layers: app, base)"],
  ],
  [
    'an unknown key',
    { 'app/layer.yaml': 'paren: base\n' },
    [
      "app/layer.yaml:1: .paren: unknown key 'paren' (did you mean 'parent'? allowed: description, parent, upstream, known_differences, base, steps)",
      "app/layer.yaml:1: (top level): a layer needs either 'parent' (the layer it is built on) or 'base' (how to make a fresh install)",
    ],
  ],
  ['a mapping where a list belongs', { 'app/layer.yaml': 'parent: base\nsteps:\n  install: curl\n' }, ['app/layer.yaml:3: .steps: must be a list, got a mapping']],
  [
    'a step with two actions',
    { 'app/layer.yaml': 'parent: base\nsteps:\n  - install: [curl]\n    upgrade: true\n' },
    ['app/layer.yaml:3: .steps[0]: a step has exactly one of: install, upgrade, run, upload'],
  ],
  [
    'wrong types and values in the set',
    { 'set.yaml': setYaml.replace('default: true', 'default: "yes"').replace('family: debian', 'family: arch') },
    ['set.yaml:2: .distro.family: must be one of "debian", "el", got string "arch"', 'set.yaml:9: .package.default: must be a boolean, got string "yes"'],
  ],
  [
    'a version RPM would reject',
    { 'set.yaml': setYaml.replace('"12"', '"12-1"') },
    ["set.yaml:4: .distro.version: '12-1' is not a valid RPM version (letters, digits, . _ + ~ ^; no '-')"],
  ],
  [
    'a relative upload target',
    { 'app/layer.yaml': 'parent: base\nsteps:\n  - upload: {from: go.sh, to: etc/x}\n' },
    ["app/layer.yaml:3: .steps[0].upload.to: 'etc/x' must be an absolute path in the guest without '..'"],
  ],
  [
    'a layer with neither parent nor base',
    { 'app/layer.yaml': 'description: nothing\n' },
    ["app/layer.yaml:1: (top level): a layer needs either 'parent' (the layer it is built on) or 'base' (how to make a fresh install)"],
  ],
  [
    'YAML that does not parse',
    { 'app/layer.yaml': 'parent: [base\n' },
    ['app/layer.yaml:2: (top level): YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]'],
  ],
  [
    'a set file missing',
    { 'set.yaml': undefined },
    [expect.stringMatching(/^set\.yaml: \(top level\): cannot read: ENOENT/) as unknown as string],
  ],
];

describe('invalid layer sets', () => {
  it.each(table)('reports %s', (_name, change, expected) => {
    expect(messages(change)).toEqual(expected);
  });

  it('reports every problem of every file at once', () => {
    const got = messages({
      'set.yaml': setYaml.replace('"12"', '"12-1"'),
      'app/layer.yaml': 'parent: base\nsteps:\n  - install: [Bad_Name]\n  - run: missing.sh\n',
      'x/layer.yaml': 'parent: nowhere\nextra: 1\n',
    });
    // x/layer.yaml's unknown key does not hide its unknown parent.
    expect(got).toHaveLength(5);
    expect(got.map((m) => m.split(':')[0])).toEqual(['set.yaml', 'app/layer.yaml', 'app/layer.yaml', 'x/layer.yaml', 'x/layer.yaml']);
  });

  it('does not cascade: children of an invalid layer get no "unknown parent"', () => {
    expect(messages({ 'base/layer.yaml': 'base: 5\n' })).toEqual(['base/layer.yaml:1: .base: must be a mapping, got number 5']);
  });

  it('refuses a script that is a link out of the layer folder', () => {
    const { layersDir, setDir } = writeLayerSet({ ...VALID_SET, 'app/go.sh': undefined as unknown as string });
    symlinkSync('/etc/hostname', path.join(setDir, 'app', 'go.sh'));
    expect(() => loadLayerSet(layersDir, 'demo')).toThrow("app/layer.yaml:4: .steps[1].run: script 'go.sh' is a link to /etc/hostname, outside the layer folder");
  });

  it('names the sets that exist when the set is unknown', () => {
    const { layersDir } = writeLayerSet(VALID_SET);
    expect(() => loadLayerSet(layersDir, 'nosuch')).toThrow(/no such layer set \(sets in .*: demo\)/);
  });
});

describe('valid layer sets', () => {
  it('loads the example with defaults filled in and parents first', () => {
    const { layersDir } = writeLayerSet(VALID_SET);
    const ls = loadLayerSet(layersDir, 'demo');
    expect(ls.order).toEqual(['base', 'app']);
    expect(ls.set.package).toEqual({ prefix: 'ost-images', default: true, installDir: '/usr/share/ost-images', payload: undefined, license: 'Various' });
    expect(ls.set.image.sizeBytes).toBe(8 * 1024 ** 3);
    expect(ls.layers.get('base')!.base).toMatchObject({ variant: 'minbase', suites: ['bookworm'], components: ['main'], hostname: 'demo' });
    expect(ls.layers.get('app')!.steps.map((s) => s.kind)).toEqual(['install', 'run']);
  });

  it('loads the shipped default set', () => {
    const ls = loadLayerSet(new URL('../../layers', import.meta.url).pathname, 'debian12');
    expect(ls.order).toEqual(['base', 'upgrade', 'engine-installed', 'host-installed']);
    expect(ls.layers.get('engine-installed')!.parent).toBe('upgrade');
    expect(ls.layers.get('host-installed')!.parent).toBe('upgrade');
  });
});
