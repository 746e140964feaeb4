// Validation against hostile, truncated and mistaken input: each rule of issue 9 as a table of
// cases with the exact messages a user sees. Every case must end in a ConfigError (exit 2) that
// names the file, line and key path, however the input was made.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { withCustomLayer } from '../../src/builder/custom.js';
import { listSets, loadLayerSet } from '../../src/definitions/load.js';
import { derivedNames, maxLayerNameLength, NAME_MAX, tooLong } from '../../src/definitions/limits.js';
import { MAX_FILE_BYTES } from '../../src/definitions/yaml-file.js';
import { ConfigError, EXIT_BAD_INPUT, UsageError, escapeControl, formatIssue, quote } from '../../src/core/errors.js';
import { HOSTILE_SETS, L, setYaml, writeHostileSet, type Files } from '../helpers/hostile-sets.js';
import { VALID_SET, writeLayerSet } from '../helpers/layerset.js';

/** VALID_SET with some files replaced (undefined deletes), loaded as set `setName`; the messages, paths relative to the set. */
function messages(change: Files, setName = 'demo'): string[] {
  const { layersDir, setDir } = writeHostileSet(change, setName);
  try {
    loadLayerSet(layersDir, setName);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(EXIT_BAD_INPUT);
    return (err as ConfigError).issues.map((i) => formatIssue({ ...i, file: i.file === setDir ? '.' : i.file.replace(`${setDir}/`, '') }));
  }
  return [];
}

describe('invalid layer sets, as users and attackers make them', () => {
  it.each(HOSTILE_SETS)('%s: %s', (_rule, _case, files, expected, setName) => {
    expect(messages(files, setName)).toEqual(expected);
  });
});

describe('every problem of a file at once', () => {
  it('one set.yaml with an unknown key, a bad URL and an over-long name: all three in one ConfigError', () => {
    const got = messages({
      'set.yaml': `${setYaml.replace('http://deb.debian.org/debian', 'ftp://deb.debian.org/debian').replace('prefix: ost-images', `prefix: ${L(230, 'p')}`)}extras: 1\n`,
    });
    expect(got).toEqual([
      "set.yaml:6: .distro.mirror: 'ftp://deb.debian.org/debian' is not a usable URL: only http://, https:// and file:// URLs are supported",
      `set.yaml:8: .package.prefix: '${L(60, 'p')}…' (230 characters) makes the RPM file name '.${L(19, 'p')}…app-12-YYYYMMDDHHMMSS.noarch.rpm.partial' 277 bytes long; at most 255`,
      "set.yaml:10: .extras: unknown key 'extras' (allowed: description, distro, image, package, flatten, source_date, ssh_key)",
    ]);
  });

  it('a layer file with a type error, an unknown key, a bad package name, a missing script and a bad URL', () => {
    const got = messages({
      'app/layer.yaml': 'parent: base\ndescripton: x\nsteps:\n  - install: curl\n  - install: [Bad_Name]\n  - run: missing.sh\nupstream: ["file://host/x"]\n',
    });
    expect(got).toEqual([
      "app/layer.yaml:2: .descripton: unknown key 'descripton' (did you mean 'description'? allowed: description, parent, upstream, known_differences, base, steps)",
      'app/layer.yaml:4: .steps[0].install: must be a list, got string "curl"',
      "app/layer.yaml:5: .steps[1].install[0]: 'Bad_Name' is not a valid Debian package name (lower-case letters, digits, + - .)",
      "app/layer.yaml:6: .steps[2].run: script 'missing.sh' does not exist in the layer folder",
      "app/layer.yaml:7: .upstream[0]: 'file://host/x' is not a usable URL: a file:// URL names a local path: file:///path (no host)",
    ]);
  });

  it('a layer with a schema error still takes part in the layer graph', () => {
    expect(messages({ 'a/layer.yaml': 'parent: b\nextra: 1\n', 'b/layer.yaml': 'parent: a\n' })).toEqual([
      'a/layer.yaml:1: .parent: layers form a cycle: a -> b -> a',
      "a/layer.yaml:2: .extra: unknown key 'extra' (allowed: description, parent, upstream, known_differences, base, steps)",
    ]);
  });
});

describe('the set name is a name before it is a path', () => {
  it.each(['../x', '..', '.', '', '/etc', 'a/b', 'Demo', 'x y', `${L(256, 'x')}`])('refuses %j before reading anything', (name) => {
    // A layers directory where '../x' is a perfectly valid set: were it read, it would load.
    const { layersDir } = writeLayerSet(VALID_SET, 'x');
    const inner = path.join(layersDir, 'inner');
    mkdirSync(inner);
    let err: unknown;
    try {
      loadLayerSet(inner, name);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(EXIT_BAD_INPUT);
    expect((err as UsageError).message).toBe(
      name.length > 255
        ? `invalid set name ${quote(name)}: a folder name has at most 255 bytes`
        : `invalid set name ${quote(name)}: a set is a folder directly under the layers directory, named with lower-case letters, digits and . _ + - (starting with a letter or digit)`,
    );
  });

  it('lists as available only folders that are valid set names with a set.yaml', () => {
    const { layersDir } = writeLayerSet(VALID_SET, 'good');
    for (const d of ['Bad Name', '.hidden', 'noset', 'file-set']) mkdirSync(path.join(layersDir, d));
    for (const d of ['Bad Name', '.hidden']) writeFileSync(path.join(layersDir, d, 'set.yaml'), setYaml);
    mkdirSync(path.join(layersDir, 'file-set', 'set.yaml'));
    expect(listSets(layersDir)).toEqual(['good']);
    expect(() => loadLayerSet(layersDir, 'nosuch')).toThrow(`no such layer set (sets in ${layersDir}: good)`);
  });
});

describe('links and layer folders', () => {
  it('refuses a layer folder that is a link (its scripts would come from elsewhere), without calling it unknown', () => {
    const { layersDir, setDir } = writeLayerSet({ ...VALID_SET, 'child/layer.yaml': 'parent: linked\n' });
    symlinkSync(path.join(setDir, 'app'), path.join(setDir, 'linked'));
    const err = (() => {
      try {
        loadLayerSet(layersDir, 'demo');
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(err!.issues.map(formatIssue)).toEqual([`${setDir}/linked: (top level): 'linked' is a link to a folder; a layer folder must be a real folder in the set's folder`]);
  });

  it('refuses a layer.yaml that is a FIFO without blocking on it', async () => {
    const { execFileSync } = await import('node:child_process');
    const { layersDir, setDir } = writeLayerSet({ ...VALID_SET, 'app/layer.yaml': undefined as unknown as string });
    execFileSync('mkfifo', [path.join(setDir, 'app', 'layer.yaml')]);
    expect(() => loadLayerSet(layersDir, 'demo')).toThrow(`${setDir}/app/layer.yaml: (top level): cannot read: not a regular file (a device, FIFO or socket)`);
  });
});

describe('worst cases at the size limit end in a ConfigError', () => {
  // The inputs that cost the yaml library seconds to minutes and hundreds of MiB at 1 MiB (see
  // yaml-file.ts), at the largest size accepted. No timing is asserted (that would measure the
  // machine); the test's own timeout bounds them.
  const M = MAX_FILE_BYTES;
  const deep = 'app/layer.yaml:1: (top level): nested more than 32 levels deep; a definition file may nest at most 32';
  const unknownKey = (n: number) => `app/layer.yaml:${n + 1}: .k${n}: unknown key 'k${n}' (allowed: description, parent, upstream, known_differences, base, steps)`;
  const flowEnd = (line: number) => `app/layer.yaml:${line}: (top level): YAML syntax: Unexpected flow-seq-end token in YAML document: "]"`;
  // name, the file, the messages: all of them, or the first ones and the last (the summary line).
  const worst: [string, string, string[], string?][] = [
    ["'[' only", '['.repeat(M), [deep]],
    ["'{' only", '{'.repeat(M), [deep]],
    ["'? ' only", '? '.repeat(M / 2), [deep]],
    ["'- ' only", '- '.repeat(M / 2), [deep]],
    // Cut at the limit in the middle of a line: that last line is a key without a value.
    ['thousands of keys', Array.from({ length: 8000 }, (_, i) => `k${i}: ${i}`).join('\n').slice(0, M), ['app/layer.yaml:5647: (top level): YAML syntax: Implicit map keys need to be followed by map values']],
    [
      'thousands of anchors',
      Array.from({ length: 6000 }, (_, i) => `k${i}: &a${i} 1`).join('\n').slice(0, M),
      [unknownKey(0), "app/layer.yaml:1: (top level): a layer needs either 'parent' (the layer it is built on) or 'base' (how to make a fresh install)", ...Array.from({ length: 18 }, (_, i) => unknownKey(i + 1))],
      'app/layer.yaml: (top level): and 4216 more problems in this file (the first 20 are shown)',
    ],
    ['thousands of aliases', `a: &a x\nb: [${Array(20000).fill('*a').join(',')}`.slice(0, M - 1) + ']', ["app/layer.yaml:2: (top level): more than 100 aliases ('*name'); a definition file may use at most 100"]],
    ['thousands of syntax errors', ']\n'.repeat(M / 2), Array.from({ length: 20 }, (_, i) => flowEnd(i + 1)), 'app/layer.yaml: (top level): and 32748 more problems in this file (the first 20 are shown)'],
  ];
  it.each(worst)('%s', (_name, text, first, summary) => {
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(M);
    // The messages themselves: the limit that stopped the parser, or the first problems and how
    // many more there were (at most 20 shown, then one line counting the rest).
    expect(messages({ 'app/layer.yaml': text })).toEqual(summary === undefined ? first : [...first, summary]);
  });
});

describe('name lengths (limits.ts)', () => {
  const parts = { set: 'demo', prefix: 'ost-images', version: '12', flattened: false };
  it('derives the longest layer name from the longest file name: the RPM while it is copied', () => {
    // .<prefix>-<set>-<layer>-<version>-<R>.noarch.rpm.partial = P + S + L + V + 38 bytes.
    expect(maxLayerNameLength(parts)).toBe(255 - 38 - 10 - 4 - 2);
    // Flattened: "-flat" more.
    expect(maxLayerNameLength({ ...parts, flattened: true })).toBe(255 - 43 - 10 - 4 - 2);
    // A kickstart base's console log holds the layer name twice: 2L + 34.
    expect(maxLayerNameLength({ ...parts, base: 'kickstart' })).toBe(Math.floor((255 - 34) / 2));
  });

  it('is exact: the longest allowed layer name fits, one more character does not', () => {
    for (const p of [parts, { ...parts, flattened: true }, { ...parts, base: 'kickstart' as const }, { ...parts, prefix: undefined }, { ...parts, version: undefined, prefix: undefined }]) {
      const max = maxLayerNameLength(p);
      expect(tooLong({ ...p, layer: 'l'.repeat(max) })).toBeUndefined();
      expect(tooLong({ ...p, layer: 'l'.repeat(max + 1) })?.bytes).toBe(NAME_MAX + 1);
    }
  });

  it('names what each file is and which parts make it', () => {
    const names = derivedNames({ ...parts, layer: 'app', flattened: true, base: 'mmdebstrap' });
    expect(names.map((d) => d.name)).toEqual([
      '.demo-app-12-YYYYMMDDHHMMSS.package-diff.json.partial',
      '.demo-app-12-YYYYMMDDHHMMSS.qcow2.compact.partial',
      '.demo-app-12-YYYYMMDDHHMMSS.packages.partial',
      '.demo-app-12-YYYYMMDDHHMMSS.id_ed25519.partial.pub',
      '.demo-app-flat-12-YYYYMMDDHHMMSS.qcow2.partial',
      'demo-app-flat-12-YYYYMMDDHHMMSS.id_ed25519.pub',
      'demo-app-flat-12-YYYYMMDDHHMMSS.packages',
      '.ost-images-demo-app-12-YYYYMMDDHHMMSS.noarch.rpm.partial',
      '.ost-images-demo-app-flat-12-YYYYMMDDHHMMSS.noarch.rpm.partial',
      'demo-app.qcow2',
      '.demo-app-pkglist.txt.rpm-tmp',
      'rpmbuild-app.4194304.XXXXXX',
      'demo-app-flat.qcow2',
      '.demo-app-flat-pkglist.txt.rpm-tmp',
      'rpmbuild-app-flat.4194304.XXXXXX',
      'demo_id_rsa.pub',
      'build-app.4194304.XXXXXX',
    ]);
    expect(names.every((d) => d.bytes === d.name.length)).toBe(true);
  });
});

describe("a custom layer's --name", () => {
  it('must fit like a layer folder name', () => {
    const { layersDir, setDir } = writeLayerSet(VALID_SET);
    const ls = loadLayerSet(layersDir, 'demo');
    expect(() => withCustomLayer(ls, { dir: setDir, on: 'app', name: L(202, 'm') })).toThrow(
      `--name: '${L(60, 'm')}…' (202 characters) makes the RPM file name '.ost-images-demo-mmm…mmm-12-YYYYMMDDHHMMSS.noarch.rpm.partial' 256 bytes long; at most 255: in set 'demo' a layer name can have at most 201 characters`,
    );
  });
});

describe('quoting values in messages', () => {
  it('cuts long values and says how long they were', () => {
    expect(quote('a'.repeat(60))).toBe(`'${'a'.repeat(60)}'`);
    expect(quote('a'.repeat(61))).toBe(`'${'a'.repeat(60)}…' (61 characters)`);
  });

  it('escapes what a terminal would act on: controls, DEL, C1, bidirectional overrides', () => {
    expect(escapeControl('a\nb\tc\r\x1b[31m\x00\x7f\x9b\u202e\u2066\ufeffz')).toBe('a\\nb\\tc\\r\\x1b[31m\\x00\\x7f\\x9b\\u202e\\u2066\\ufeffz');
    expect(formatIssue({ file: 'x\x1b]0;t\x07/layer.yaml', path: '.a', message: 'm' })).toBe('x\\x1b]0;t\\x07/layer.yaml: .a: m');
  });
});
