// The hostile layer-set table (issue 9): each rule as cases of files changed from VALID_SET, with
// the exact messages a user sees. Shared by the unit test (loadLayerSet) and the CLI test
// (`ost-images validate`: exit 2, the same messages, no stack trace).
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MAX_FILE_BYTES } from '../../src/definitions/yaml-file.js';
import { VALID_SET, writeLayerSet } from './layerset.js';

export type Files = Record<string, string | Buffer | undefined>;

/** VALID_SET with some files replaced (undefined deletes), written as set `setName`. */
export function writeHostileSet(change: Files, setName = 'demo'): { layersDir: string; setDir: string } {
  const files: Files = { ...VALID_SET, ...change };
  const text = Object.fromEntries(Object.entries(files).filter((e): e is [string, string] => typeof e[1] === 'string'));
  const { layersDir, setDir } = writeLayerSet(text, setName);
  for (const [rel, content] of Object.entries(files)) {
    if (!Buffer.isBuffer(content)) continue;
    mkdirSync(path.dirname(path.join(setDir, rel)), { recursive: true });
    writeFileSync(path.join(setDir, rel), content);
  }
  return { layersDir, setDir };
}

export const setYaml = VALID_SET['set.yaml'];
const elSet = 'distro: {family: el, name: CentOS Stream, version: "9"}\npackage: {prefix: ost-images}\n';
const sha = 'a'.repeat(64);
const ksBase = (template = 'ks.cfg.hbs'): string => `base:\n  kickstart:\n    iso: {url: "https://example.org/el.iso", sha256: "${sha}"}\n    template: ${template}\n`;
const elFiles = (): Files => ({ 'set.yaml': elSet, 'base/layer.yaml': ksBase(), 'base/ks.cfg.hbs': 'network --hostname={{hostname}}\n', 'app/layer.yaml': 'parent: base\nsteps:\n  - install: [curl]\n' });

/** The billion laughs, shortened: 9 aliases of 9 aliases, nine levels deep. */
export function aliasBomb(): string {
  const lines = ['a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let i = 1; i < 10; i++) {
    const [prev, cur] = [String.fromCharCode(96 + i), String.fromCharCode(97 + i)];
    lines.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(', ')}]`);
  }
  return `${lines.join('\n')}\n`;
}

export const L = (n: number, c = 'a'): string => c.repeat(n);

/** rule, case, files changed, the messages (in file order, by line; paths relative to the set), the set's name */
export const HOSTILE_SETS: [string, string, Files, string[], string?][] = [
  // rule, case, files changed, the messages (in file order, by line), the set's name
  [
    'hostile YAML',
    'an alias bomb',
    { 'app/layer.yaml': aliasBomb() },
    [`app/layer.yaml:5: .e[0]: alias '*d' expands to 7381 values, past the limit of 10000 values per file (aliases expanded): an alias bomb?`],
  ],
  [
    'hostile YAML',
    'an alias inside the value it names',
    { 'app/layer.yaml': 'parent: base\nsteps: &s [*s]\n' },
    [`app/layer.yaml:2: .steps[0]: alias '*s' is inside the value it names (it would never end)`],
  ],
  ['hostile YAML', 'an alias with no anchor', { 'app/layer.yaml': 'parent: *nope\n' }, [`app/layer.yaml:1: .parent: alias '*nope' names no anchor '&nope' before it`]],
  [
    'hostile YAML',
    'more than 100 aliases',
    { 'app/layer.yaml': `parent: &p base\ndescription: [${Array(101).fill('*p').join(', ')}]\n` },
    [`app/layer.yaml:2: (top level): more than 100 aliases ('*name'); a definition file may use at most 100`],
  ],
  [
    'hostile YAML',
    'flow nesting 30 000 deep',
    { 'app/layer.yaml': `parent: base\nsteps: ${'['.repeat(30000)}\n` },
    ['app/layer.yaml:2: (top level): nested more than 32 levels deep; a definition file may nest at most 32'],
  ],
  [
    'hostile YAML',
    'block nesting 40 deep',
    { 'app/layer.yaml': `parent: base\nsteps:\n${'- '.repeat(40)}x\n` },
    ['app/layer.yaml:3: (top level): nested more than 32 levels deep; a definition file may nest at most 32'],
  ],
  [
    'hostile YAML',
    'a file over 64 KiB',
    { 'app/layer.yaml': `parent: base\n#${'x'.repeat(MAX_FILE_BYTES)}\n` },
    ['app/layer.yaml: (top level): the file is 65551 bytes; at most 65536 (64 KiB) are read'],
  ],
  [
    'hostile YAML',
    'more than 10 000 values',
    { 'app/layer.yaml': `parent: base\nupstream: [${Array(10001).fill('1').join(',')}]\n` },
    ['app/layer.yaml:2: .upstream[9995]: the file holds more than 10000 values; a definition file may hold at most 10000'],
  ],
  [
    'hostile YAML',
    'two documents',
    { 'app/layer.yaml': 'parent: base\n---\nparent: base\n' },
    [`app/layer.yaml:2: (top level): the file holds 2 YAML documents ('---'); a definition file is one document`],
  ],
  ['hostile YAML', 'a duplicate key', { 'app/layer.yaml': 'parent: base\nsteps: []\nparent: app\n' }, [`app/layer.yaml:3: .parent: duplicate key 'parent' (first at line 1)`]],
  [
    'hostile YAML',
    'tags beyond plain data',
    { 'app/layer.yaml': 'parent: !!binary YmFzZQ==\ndescription: !shell x\n' },
    [
      `app/layer.yaml:1: .parent: YAML tag '!!binary' is not supported here (plain strings, numbers, booleans, lists and mappings only)`,
      `app/layer.yaml:2: .description: YAML tag '!shell' is not supported here (plain strings, numbers, booleans, lists and mappings only)`,
    ],
  ],
  [
    'hostile YAML',
    'a list as a key',
    { 'app/layer.yaml': '? [a, b]\n: 1\nparent: base\n' },
    ['app/layer.yaml:1: (top level): a key must be a plain value, not a list, a mapping or an alias'],
  ],
  [
    'hostile YAML',
    'a control character in the file',
    { 'app/layer.yaml': 'parent: base\ndescription: \x1b[2Jgone\n' },
    ['app/layer.yaml:2: (top level): control character U+001B at column 14: a YAML file holds printable text only (is it a binary file?)'],
  ],
  [
    'hostile YAML',
    'a binary file',
    { 'app/layer.yaml': Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00]) },
    ['app/layer.yaml:1: (top level): control character U+007F at column 1: a YAML file holds printable text only (is it a binary file?)'],
  ],
  [
    'set.yaml problems',
    'an unknown key in an el set: no family guessed for its kickstart base',
    { ...elFiles(), 'set.yaml': `${elSet}extra: 1\n` },
    [`set.yaml:3: .extra: unknown key 'extra' (allowed: description, distro, image, package, flatten, source_date, ssh_key)`],
  ],
  [
    'set.yaml problems',
    'an invalid family: no family checks at all',
    { 'set.yaml': setYaml.replace('family: debian', 'family: arch') },
    ['set.yaml:2: .distro.family: must be one of "debian", "el", got string "arch"'],
  ],
  [
    'set.yaml problems',
    'set.yaml that does not parse: package names checked by the rule of every family',
    { 'set.yaml': 'distro: [\n', 'app/layer.yaml': 'parent: base\nsteps:\n  - install: [Curl_X, "x;reboot"]\n' },
    [
      'set.yaml:2: (top level): YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]',
      `app/layer.yaml:3: .steps[0].install[1]: 'x;reboot' is not a valid package name for any family (letters, digits, . _ + -)`,
    ],
  ],
  [
    'set.yaml problems',
    'an invalid version: no name lengths computed with it',
    { 'set.yaml': setYaml.replace('"12"', `"1-${L(300, '2')}"`) },
    [`set.yaml:4: .distro.version: '1-${L(58, '2')}…' (302 characters) is not a valid RPM version (letters, digits, . _ + ~ ^; no '-')`],
  ],
  [
    'URLs',
    'a mirror that is not a URL',
    { 'set.yaml': setYaml.replace('http://deb.debian.org/debian', 'not a url') },
    [`set.yaml:6: .distro.mirror: 'not a url' is not a usable URL: only http://, https:// and file:// URLs are supported`],
  ],
  [
    'URLs',
    'a mirror with a space',
    { 'set.yaml': setYaml.replace('http://deb.debian.org/debian', '"http://deb.debian.org/deb ian"') },
    [`set.yaml:6: .distro.mirror: 'http://deb.debian.org/deb ian' is not a usable URL: a URL has no spaces (write a space as %20)`],
  ],
  [
    'URLs',
    'an upstream without //',
    { 'app/layer.yaml': 'parent: base\nupstream: ["http:deb.debian.org/debian/dists/bookworm/InRelease"]\n' },
    [`app/layer.yaml:2: .upstream[0]: 'http:deb.debian.org/debian/dists/bookworm/InRelease' is not a usable URL: write it as http://...`],
  ],
  [
    'URLs',
    'an image over ftp',
    { 'base/layer.yaml': `base:\n  image: {url: "ftp://example.org/x.qcow2", sha256: "${sha}"}\n` },
    [`base/layer.yaml:2: .base.image.url: 'ftp://example.org/x.qcow2' is not a usable URL: only http://, https:// and file:// URLs are supported`],
  ],
  [
    'URLs',
    'a checksum URL with a password',
    { 'base/layer.yaml': 'base:\n  image: {url: "https://example.org/x.qcow2", checksum_url: "https://me:secret@example.org/SHA256SUMS"}\n' },
    [
      `base/layer.yaml:2: .base.image.checksum_url: 'https://me:***@example.org/SHA256SUMS' is not a usable URL: a user name or password in a URL would be recorded in build records and published packages`,
    ],
  ],
  [
    'URLs',
    'an image URL that names a folder',
    { 'base/layer.yaml': 'base:\n  image: {url: "https://example.org/images/", checksum_url: "https://example.org/SHA256SUMS"}\n' },
    [`base/layer.yaml:2: .base.image.url: 'https://example.org/images/' names a folder; give the URL of the file`],
  ],
  [
    'URLs',
    'an ISO URL with no host',
    { ...elFiles(), 'base/layer.yaml': ksBase().replace('https://example.org/el.iso', 'https:///el.iso') },
    [`base/layer.yaml:3: .base.kickstart.iso.url: 'https:///el.iso' is not a usable URL: an https:// URL needs a host name`],
  ],
  [
    'URLs',
    'a kickstart repository on another host by file://',
    { ...elFiles(), 'base/layer.yaml': `${ksBase()}    repos: {baseos: "file://mirror/el9/"}\n` },
    [`base/layer.yaml:5: .base.kickstart.repos.baseos: 'file://mirror/el9/' is not a usable URL: a file:// URL names a local path: file:///path (no host)`],
  ],
  [
    'URLs',
    'a kickstart repository with a quote',
    { ...elFiles(), 'base/layer.yaml': `${ksBase()}    repos: {baseos: "https://example.org/it's/"}\n` },
    [`base/layer.yaml:5: .base.kickstart.repos.baseos: 'https://example.org/it's/' holds ' or #, which the kickstart's repo line would cut at`],
  ],
  [
    'needed later',
    'a Debian set with a mmdebstrap base and no mirror',
    { 'set.yaml': setYaml.replace('  mirror: http://deb.debian.org/debian\n', '') },
    [`set.yaml:2: .distro: missing key 'mirror' (the Debian mirror mmdebstrap installs from, e.g. http://deb.debian.org/debian), needed by base layer 'base'`],
  ],
  [
    'needed later',
    'suites that mmdebstrap would read as options, and no components',
    { 'base/layer.yaml': 'base:\n  mmdebstrap:\n    suites: ["--customize-hook=touch /x"]\n    components: []\n' },
    [
      `base/layer.yaml:3: .base.mmdebstrap.suites[0]: '--customize-hook=touch /x' is not a Debian suite name (lower-case letters, digits, . -)`,
      'base/layer.yaml:4: .base.mmdebstrap.components: must not be empty',
    ],
  ],
  [
    'needed later',
    'a kickstart template with an unknown variable',
    { ...elFiles(), 'base/ks.cfg.hbs': 'network --hostname={{hostname}}\nrootpw {{rootPassword}}\n' },
    [
      `base/layer.yaml:4: .base.kickstart.template: kickstart template 'ks.cfg.hbs' cannot be rendered: line 2 uses '{{rootPassword}}', which is not a kickstart variable (variables: hostname, rootSshKey, diskSizeMiB, repos (name, url), kernelCmdline, set.name, set.version, doneMarker)`,
    ],
  ],
  [
    'needed later',
    'a kickstart template that is not UTF-8',
    { ...elFiles(), 'base/ks.cfg.hbs': Buffer.from('# ks\n\xe9t\xe9\n', 'latin1') },
    [`base/layer.yaml:4: .base.kickstart.template: kickstart template 'ks.cfg.hbs' (line 2): not UTF-8 text: byte 0xe9 at offset 5 is not valid UTF-8 (save the file as UTF-8)`],
  ],
  [
    'needed later',
    'a kickstart template that does not compile',
    { ...elFiles(), 'base/ks.cfg.hbs': '{{#each repos}}\nrepo {{name}}\n' },
    [
      `base/layer.yaml:4: .base.kickstart.template: kickstart template 'ks.cfg.hbs' cannot be rendered: Parse error on line 3: Expecting 'OPEN_INVERSE_CHAIN', 'INVERSE', 'OPEN_ENDBLOCK', got 'EOF'`,
    ],
  ],
  [
    'names that cannot fit',
    'a 300-character package prefix',
    { 'set.yaml': setYaml.replace('prefix: ost-images', `prefix: ${L(300)}`) },
    [
      `set.yaml:8: .package.prefix: '${L(60)}…' (300 characters) makes the RPM file name '.aaaaaaaaaaaaaaaaaaa…app-12-YYYYMMDDHHMMSS.noarch.rpm.partial' 347 bytes long; at most 255`,
    ],
  ],
  [
    'names that cannot fit',
    'a 250-character layer name',
    { [`${L(250, 'l')}/layer.yaml`]: 'parent: base\n' },
    [
      `${L(250, 'l')}: (top level): the layer name '${L(60, 'l')}…' (250 characters) makes the RPM file name '.ost-images-demo-lll…lll-12-YYYYMMDDHHMMSS.noarch.rpm.partial' 304 bytes long; at most 255: in this set a layer name can have at most 201 characters`,
    ],
  ],
  [
    'names that cannot fit',
    'a 240-character version',
    { 'set.yaml': setYaml.replace('"12"', `"${L(240, '1')}"`) },
    [
      `set.yaml:4: .distro.version: '${L(60, '1')}…' (240 characters) makes the RPM file name '.ost-images-demo-app…111111-YYYYMMDDHHMMSS.noarch.rpm.partial' 295 bytes long; at most 255`,
    ],
  ],
  [
    'names that cannot fit',
    'a 230-character set name',
    {},
    [
      `base/layer.yaml:2: .base: the default host name, the set name '${L(60, 's')}…' (230 characters), is not a valid host name (lower-case letters, digits and '-', at most 63); set 'hostname'`,
      `.: (top level): the set name '${L(60, 's')}…' (230 characters) makes the RPM file name '.ost-images-ssssssss…app-12-YYYYMMDDHHMMSS.noarch.rpm.partial' 283 bytes long; at most 255`,
    ],
    L(230, 's'),
  ],
  [
    'names that cannot fit',
    'prefix, set, layer and version that fit alone but not together',
    { 'set.yaml': setYaml.replace('prefix: ost-images', `prefix: ${L(60, 'p')}`).replace('"12"', `"${L(60, '1')}"`), [`${L(80, 'l')}/layer.yaml`]: 'parent: base\n' },
    [
      `${L(80, 'l')}: (top level): the layer name '${L(60, 'l')}…' (80 characters) makes the RPM file name '.ppppppppppppppppppp…111111-YYYYMMDDHHMMSS.noarch.rpm.partial' 298 bytes long; at most 255: in this set a layer name can have at most 37 characters`,
    ],
    L(60, 's'),
  ],
  [
    'names that cannot fit',
    "a kickstart base's 111-character layer name (its console log)",
    { ...elFiles(), 'base/layer.yaml': undefined, 'base/ks.cfg.hbs': undefined, 'app/layer.yaml': undefined, 'app/go.sh': undefined, [`${L(111, 'k')}/layer.yaml`]: ksBase(), [`${L(111, 'k')}/ks.cfg.hbs`]: '{{hostname}}\n' },
    [
      `${L(111, 'k')}: (top level): the layer name '${L(60, 'k')}…' (111 characters) makes the console log name '${L(20, 'k')}…${L(21, 'k')}.4194304.XXXXXX.log' 256 bytes long; at most 255: in this set a layer name can have at most 110 characters`,
    ],
  ],
  [
    'names that cannot fit',
    'a layer named like the flattened variant of another',
    { 'set.yaml': `${setYaml}flatten: [app]\n`, 'app-flat/layer.yaml': 'parent: base\n' },
    [`app-flat: (top level): the layer name 'app-flat' is taken by the flattened variant of layer 'app' (set.yaml flattens it): their packages and image files would collide`],
  ],
  [
    'not UTF-8',
    'a Latin-1 layer.yaml',
    { 'app/layer.yaml': Buffer.from('parent: base\ndescription: caf\xe9\n', 'latin1') },
    ['app/layer.yaml:2: (top level): not UTF-8 text: byte 0xe9 at offset 29 is not valid UTF-8 (save the file as UTF-8)'],
  ],
  [
    'not UTF-8',
    'a UTF-16 set.yaml',
    { 'set.yaml': Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(setYaml, 'utf16le')]) },
    ['set.yaml:1: (top level): not UTF-8 text: byte 0xff at offset 0 is not valid UTF-8 (save the file as UTF-8)'],
  ],
  [
    'long and unprintable values',
    'a 2000-character package name',
    { 'app/layer.yaml': `parent: base\nsteps:\n  - install: ["${L(1000, 'x;')}"]\n` },
    [
      `app/layer.yaml:3: .steps[0].install[0]: 'x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;x;…' (2000 characters) is not a valid Debian package name (lower-case letters, digits, + - .)`,
    ],
  ],
  [
    'long and unprintable values',
    'a long unknown key',
    { 'app/layer.yaml': `parent: base\n${L(500, 'k')}: 1\n` },
    [`app/layer.yaml:2: .${L(60, 'k')}…: unknown key '${L(60, 'k')}…' (500 characters) (allowed: description, parent, upstream, known_differences, base, steps)`],
  ],
  [
    'long and unprintable values',
    'escape sequences in a value',
    { 'app/layer.yaml': 'parent: base\nsteps:\n  - run: "\\e]0;pwned\\a\\u202egnp.sh"\n' },
    [`app/layer.yaml:3: .steps[0].run: script '\\x1b]0;pwned\\x07\\u202egnp.sh' does not exist in the layer folder`],
  ],
  [
    'long and unprintable values',
    'a control character in a description',
    { 'set.yaml': `${setYaml}description: "one\\0two"\n` },
    [`set.yaml:10: .description: 'one\\x00two' holds a control character`],
  ],
  [
    'long and unprintable values',
    'a flood of problems in one file',
    { 'app/layer.yaml': `parent: base\n${Array.from({ length: 50 }, (_, i) => `k${i}: 1`).join('\n')}\n` },
    [
      `app/layer.yaml:2: .k0: unknown key 'k0' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:3: .k1: unknown key 'k1' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:4: .k2: unknown key 'k2' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:5: .k3: unknown key 'k3' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:6: .k4: unknown key 'k4' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:7: .k5: unknown key 'k5' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:8: .k6: unknown key 'k6' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:9: .k7: unknown key 'k7' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:10: .k8: unknown key 'k8' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:11: .k9: unknown key 'k9' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:12: .k10: unknown key 'k10' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:13: .k11: unknown key 'k11' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:14: .k12: unknown key 'k12' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:15: .k13: unknown key 'k13' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:16: .k14: unknown key 'k14' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:17: .k15: unknown key 'k15' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:18: .k16: unknown key 'k16' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:19: .k17: unknown key 'k17' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:20: .k18: unknown key 'k18' (allowed: description, parent, upstream, known_differences, base, steps)`,
      `app/layer.yaml:21: .k19: unknown key 'k19' (allowed: description, parent, upstream, known_differences, base, steps)`,
      'app/layer.yaml: (top level): and 30 more problems in this file (the first 20 are shown)',
    ],
  ],
  ['hardening', 'a size below 1G', { 'set.yaml': `${setYaml}image: {size: 512M}\n` }, [`set.yaml:10: .image.size: '512M' must be a size from 1G to 16T, like 8G or 10240M`]],
  ['hardening', 'an absurd size', { 'set.yaml': `${setYaml}image: {size: 100000T}\n` }, [`set.yaml:10: .image.size: '100000T' must be a size from 1G to 16T, like 8G or 10240M`]],
  ['hardening', 'a negative size', { 'set.yaml': `${setYaml}image: {size: "-8G"}\n` }, [`set.yaml:10: .image.size: '-8G' must be a size from 1G to 16T, like 8G or 10240M`]],
  [
    'hardening',
    'an installer timeout of 30 years',
    { ...elFiles(), 'base/layer.yaml': `${ksBase()}    timeout: 999999999\n` },
    ['base/layer.yaml:5: .base.kickstart.timeout: must be at most 604800, got number 999999999'],
  ],
  [
    'hardening',
    'an upload onto a folder',
    { 'app/layer.yaml': 'parent: base\nsteps:\n  - upload: {from: go.sh, to: /etc/}\n' },
    [`app/layer.yaml:3: .steps[0].upload.to: '/etc/' must name a file, not a folder (chmod would change the folder)`],
  ],
  [
    'hardening',
    'an upload to a path with a newline, and a bad mode',
    { 'app/layer.yaml': 'parent: base\nsteps:\n  - upload: {from: go.sh, to: "/etc/a\\nb", mode: "999"}\n' },
    [`app/layer.yaml:3: .steps[0].upload.to: '/etc/a\\nb' holds a control character`, `app/layer.yaml:3: .steps[0].upload.mode: '999' must be an octal file mode like 0644`],
  ],
  [
    'hardening',
    'an install directory with a wildcard',
    { 'set.yaml': setYaml.replace('  default: true\n', '  default: true\n  install_dir: /usr/share/*\n') },
    [`set.yaml:10: .package.install_dir: '/usr/share/*' must be an absolute path of plain folder names (letters, digits, . _ + -; no spaces, quotes, '%', wildcards, '.' or '..')`],
  ],
  [
    'hardening',
    'the root as install directory',
    { 'set.yaml': setYaml.replace('  default: true\n', '  default: true\n  install_dir: /\n') },
    [`set.yaml:10: .package.install_dir: '/' must be an absolute path of plain folder names (letters, digits, . _ + -; no spaces, quotes, '%', wildcards, '.' or '..')`],
  ],
  [
    'hardening',
    'a set name that is no host name, and no hostname',
    {},
    [`base/layer.yaml:2: .base: the default host name, the set name 'my_set', is not a valid host name (lower-case letters, digits and '-', at most 63); set 'hostname'`],
    'my_set',
  ],
  [
    'hardening',
    'a kernel command line of 2 KiB',
    { 'base/layer.yaml': `base:\n  mmdebstrap: {packages: [openssh-server]}\n  kernel_cmdline: [${Array(200).fill('quiet=1234567').join(', ')}]\n` },
    [`base/layer.yaml:3: .base.kernel_cmdline: the arguments make 2799 bytes; at most 1024 (the kernel cuts its command line at 2047 bytes, GRUB's and the console's included)`],
  ],
  ['hardening', 'a layer that is its own parent', { 'app/layer.yaml': 'parent: app\n' }, ['app/layer.yaml:1: .parent: layers form a cycle: app -> app']],
  [
    'hardening',
    'ssh_key with both forms and a bad variable name',
    { 'set.yaml': `${setYaml}ssh_key: {file: keys/root, env: "ROOT KEY"}\n` },
    [
      `set.yaml:10: .ssh_key: give exactly one of 'file' (a key file) and 'env' (a variable holding its path)`,
      `set.yaml:10: .ssh_key.env: 'ROOT KEY' is not an environment variable name (letters, digits, _)`,
    ],
  ],
  ['hardening', 'a layer listed twice in flatten', { 'set.yaml': `${setYaml}flatten: [app, app]\n` }, [`set.yaml:10: .flatten: lists 'app' twice (items 1 and 0)`]],
  ['hardening', 'an empty distribution name', { 'set.yaml': setYaml.replace('name: Debian', 'name: ""') }, ['set.yaml:3: .distro.name: must not be empty']],
  [
    'hardening',
    'a package name with shell metacharacters',
    { 'app/layer.yaml': 'parent: base\nsteps:\n  - install: ["curl$(reboot)", "-y"]\n' },
    [
      `app/layer.yaml:3: .steps[0].install[0]: 'curl$(reboot)' is not a valid Debian package name (lower-case letters, digits, + - .)`,
      `app/layer.yaml:3: .steps[0].install[1]: '-y' is not a valid Debian package name (lower-case letters, digits, + - .)`,
    ],
  ],
];

