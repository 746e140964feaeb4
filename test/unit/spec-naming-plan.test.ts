import { describe, expect, it } from 'vitest';
import { baseFiles } from '../../src/builder/base.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import { renderSpec } from '../../src/package/package.js';
import { packagedFiles, rpmText, specView } from '../../src/package/spec.js';
import { releaseStamp } from '../../src/records/build.js';
import { imageFileName, packageName, rpmFileName, unqualifiedName } from '../../src/definitions/naming.js';
import { chainOf, descendantsOf, planBuild, topLayers } from '../../src/plan/plan.js';
import { computeKeys } from '../../src/plan/keys.js';
import { unqualifiedConflicts } from '../../src/publish/publish.js';
import type { BuildRecord } from '../../src/records/build.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';

const ls = loadLayerSet(writeLayerSet(demoSet({ isDefault: true })).layersDir, 'demo');
const nonDefault = loadLayerSet(writeLayerSet(demoSet({ isDefault: false }), 'el9').layersDir, 'el9');

function rec(layer: string, release: string, parent?: BuildRecord): BuildRecord {
  return {
    schema: 1, set: 'demo', layer, version: '12', release, image: imageFileName('demo', layer, { version: '12', release }),
    key: computeKeys(ls).get(layer)!.key, manifest: computeKeys(ls).get(layer)!.manifest,
    parent: parent && { layer: parent.layer, version: parent.version, release: parent.release, image: parent.image },
    sshKey: parent ? undefined : { private: `demo-${layer}-12-${release}.id_ed25519`, public: `demo-${layer}-12-${release}.id_ed25519.pub` },
    backend: 'chroot', builtAt: '2026-01-01T00:00:00Z', seconds: 1, virtualSize: 1, allocatedSize: 1,
  };
}
const base = rec('base', '20260101000000');
const upgrade = rec('upgrade', '20260101000100', base);
const engine = rec('engine-installed', '20260101000200', upgrade);

describe('naming and versions', () => {
  it('qualifies package names by set and provides the short name only for the default set', () => {
    expect(packageName(ls.set, 'engine-installed')).toBe('ost-images-demo-engine-installed');
    expect(unqualifiedName(ls.set, 'engine-installed')).toBe('ost-images-engine-installed');
    expect(rpmFileName(ls.set, 'upgrade', upgrade)).toBe('ost-images-demo-upgrade-12-20260101000100.noarch.rpm');
  });
  it('names images by build, so a child names its exact parent build', () => {
    expect(imageFileName('demo', 'upgrade', { version: '12', release: '20260101000100' })).toBe('demo-upgrade-12-20260101000100.qcow2');
  });
  it('releases are UTC build stamps that sort by time', () => {
    expect(releaseStamp(new Date('2026-11-22T02:35:09.123Z'))).toBe('20261122023509');
    expect(releaseStamp(new Date('2026-11-22T02:35:10Z')) > releaseStamp(new Date('2026-11-22T02:35:09Z'))).toBe(true);
  });
});

describe('spec view model', () => {
  it('pins the parent build exactly and lists the image read-only under the install dir', () => {
    const v = specView(ls.set, ls.layers.get('engine-installed')!, engine, packagedFiles(ls.set, engine, '/store/demo/images'), 'w6T0L27.zstdio');
    expect(v).toMatchObject({
      name: 'ost-images-demo-engine-installed',
      version: '12',
      release: '20260101000200',
      payload: 'w6T0L27.zstdio',
      requires: ['ost-images-demo-upgrade = 12-20260101000100'],
      provides: [
        'ost-images-engine-installed = 12-20260101000200',
        'ost-images-layer(demo/engine-installed) = 12-20260101000200',
        `ost-images-key(${computeKeys(ls).get('engine-installed')!.key})`,
        'installonlypkg(vm)',
      ],
      dirs: ['/usr/share/ost-images'],
      files: [{ path: '/usr/share/ost-images/demo-engine-installed-12-20260101000200.qcow2', mode: '0444' }],
      // Quoted for Lua: the template prints them as they are.
      names: {
        dir: '"/usr/share/ost-images"',
        prefix: '"demo-engine-installed-"',
        selfVr: '"12-20260101000200"',
        links: [
          { name: '"demo-engine-installed.qcow2"', suffix: '".qcow2"' },
          { name: '"demo-engine-installed-pkglist.txt"', suffix: '".packages"' },
        ],
      },
    });
  });
  it('ships the root key pair with the base: private half 0600', () => {
    const f = packagedFiles(ls.set, base, '/s');
    expect(f.map((x) => [x.path, x.source, x.mode.toString(8)])).toEqual([
      ['/usr/share/ost-images/demo-base-12-20260101000000.qcow2', '/s/demo-base-12-20260101000000.qcow2', '444'],
      ['/usr/share/ost-images/demo-base-12-20260101000000.id_ed25519', '/s/demo-base-12-20260101000000.id_ed25519', '600'],
      ['/usr/share/ost-images/demo-base-12-20260101000000.id_ed25519.pub', '/s/demo-base-12-20260101000000.id_ed25519.pub', '644'],
      // The same pair under the set's stable name, byte-identical in every base package of the set.
      ['/usr/share/ost-images/demo_id_rsa', '/s/demo-base-12-20260101000000.id_ed25519', '600'],
      ['/usr/share/ost-images/demo_id_rsa.pub', '/s/demo-base-12-20260101000000.id_ed25519.pub', '644'],
    ]);
  });
  it('a non-default set provides no short names', () => {
    const b = { ...base, set: 'el9', key: undefined };
    expect(specView(nonDefault.set, nonDefault.layers.get('base')!, b, [], 'w.ufdio').provides).toEqual(['ost-images-layer(el9/base) = 12-20260101000000', 'installonlypkg(vm)']);
  });
  it('escapes user text: % doubled, newlines folded', () => {
    expect(rpmText('100%\nsure  %{x}')).toBe('100%% sure %%{x}');
  });
  it('renders a spec with no HTML escaping and every field in place', () => {
    const v = specView(ls.set, ls.layers.get('engine-installed')!, engine, packagedFiles(ls.set, engine, '/s'), 'w6T0L27.zstdio');
    const spec = renderSpec(v);
    expect(spec).not.toMatch(/&#x3D;|&amp;|&lt;/);
    expect(spec).toContain('%global _binary_payload w6T0L27.zstdio\n');
    expect(spec).toContain('Requires:  ost-images-demo-upgrade = 12-20260101000100\n');
    expect(spec).toContain('Provides:  ost-images-engine-installed = 12-20260101000200\n');
    expect(spec).toContain('%attr(0444,root,root) /usr/share/ost-images/demo-engine-installed-12-20260101000200.qcow2\n');
    expect(spec).toContain('%dir /usr/share/ost-images\n');
    // The stable names' scriptlets, in Lua (no /bin/sh in an installroot), with this build's values.
    for (const s of ['%posttrans -p <lua>', '%preun -p <lua>', '%postun -p <lua>']) expect(spec).toContain(`\n${s}\n`);
    expect(spec).toContain('local dir, prefix, self_vr = "/usr/share/ost-images", "demo-engine-installed-", "12-20260101000200"\n');
    expect(spec).toContain('  { name = "demo-engine-installed-pkglist.txt", suffix = ".packages" },\n');
    expect(spec).toContain('BuildArch: noarch\nAutoReqProv: no\n');
  });
});

describe('planning', () => {
  const none = new Map<string, BuildRecord | undefined>();
  const have = new Map<string, BuildRecord | undefined>([['base', base], ['upgrade', upgrade], ['engine-installed', engine]]);
  it('knows chains, descendants and top layers', () => {
    expect(chainOf(ls, 'engine-installed')).toEqual(['base', 'upgrade', 'engine-installed']);
    expect(descendantsOf(ls, 'upgrade').sort()).toEqual(['engine-installed', 'host-installed']);
    expect(topLayers(ls)).toEqual(['engine-installed', 'host-installed']);
  });
  it('with nothing asked for, builds what has no build or changed inputs and reuses the rest', () => {
    expect(planBuild(ls, [], have).entries.map((e) => `${e.layer}:${e.action}:${e.reason}`)).toEqual([
      'base:reuse:in local store: 12-20260101000000',
      'upgrade:reuse:in local store: 12-20260101000100',
      'engine-installed:reuse:in local store: 12-20260101000200',
      'host-installed:build:no build of this layer yet',
    ]);
    expect(planBuild(ls, [], none).entries.every((e) => e.action === 'build')).toBe(true);
  });
  it('rebuilds what --force names, and everything built on it', () => {
    expect(planBuild(ls, ['upgrade', 'engine-installed'], have, { force: true }).entries.map((e) => `${e.layer}:${e.action}:${e.reason}`)).toEqual([
      'base:reuse:in local store: 12-20260101000000', 'upgrade:build:forced', 'engine-installed:build:forced',
    ]);
  });
  it('rebuilds a layer whose inputs changed, saying what changed', () => {
    const stale = new Map(have);
    stale.set('engine-installed', { ...engine, key: 'old', manifest: { ...engine.manifest!, steps: [{ install: ['mysql'] }] } });
    const e = planBuild(ls, ['engine-installed'], stale).entries[2]!;
    expect([e.action, e.reason, e.changes]).toEqual(['build', 'inputs changed', ['.steps[0].install[0]: "mysql" -> "postgresql"']]);
  });
  it('rebuilds a child made on another build of its parent', () => {
    const moved = new Map(have);
    moved.set('engine-installed', { ...engine, parent: { ...engine.parent!, release: '20250101000000' } });
    expect(planBuild(ls, ['engine-installed'], moved).entries[2]!.reason).toBe("made on another build of 'upgrade' than its current one");
  });
  it('rebuilds one changed layer on the existing builds of its ancestors', () => {
    const p = planBuild(ls, ['engine-installed'], new Map(have).set('engine-installed', { ...engine, key: 'older' }));
    expect(p.entries.map((e) => `${e.layer}:${e.action}`)).toEqual(['base:reuse', 'upgrade:reuse', 'engine-installed:build']);
    expect(p.entries[1]!.existing).toBe(upgrade);
  });
  it('builds missing ancestors first', () => {
    expect(planBuild(ls, ['host-installed'], none).entries.map((e) => `${e.layer}:${e.action}:${e.reason}`)).toEqual([
      'base:build:no build of this layer yet', "upgrade:build:parent 'base' is being rebuilt", "host-installed:build:parent 'upgrade' is being rebuilt",
    ]);
  });
  it('rebuilds requested children on top of a rebuilt parent', () => {
    const noUpgrade = new Map(have);
    noUpgrade.delete('upgrade');
    expect(planBuild(ls, ['upgrade', 'engine-installed'], noUpgrade).entries.map((e) => `${e.layer}:${e.action}:${e.reason}`)).toEqual([
      'base:reuse:in local store: 12-20260101000000', 'upgrade:build:no build of this layer yet', "engine-installed:build:parent 'upgrade' is being rebuilt",
    ]);
  });
  it('refuses an unknown layer, naming the ones that exist', () => {
    expect(() => planBuild(ls, ['nope'], have)).toThrow("set 'demo' has no layer 'nope' (layers: base, upgrade, engine-installed, host-installed)");
  });
});

describe('base files', () => {
  it('fstab and GRUB boot by UUID with a serial console', () => {
    const files = Object.fromEntries(baseFiles(ls.set, ls.layers.get('base')!, 'u-u-i-d', 'ssh-ed25519 AAAA k').map(([p, c, m]) => [p, { c, m }]));
    expect(files['/etc/fstab']!.c).toContain('UUID=u-u-i-d / ext4 errors=remount-ro 0 1');
    expect(files['/etc/default/grub.d/50-ost-images.cfg']!.c).toContain('GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"');
    expect(files['/root/.ssh/authorized_keys']).toEqual({ c: 'ssh-ed25519 AAAA k\n', m: 0o600 });
    expect(files['/etc/hostname']!.c).toBe('demo\n');
  });
});

describe('short-name conflicts', () => {
  const h = (name: string, set: string, extra: string[]) => ({ file: `/r/${name}.rpm`, header: { name, version: '1', release: '1', requires: [], provides: [`${name} = 1-1`, `ost-images-layer(${set}/x) = 1-1`, ...extra] } });
  it('accepts one claimant per short name, and the same set claiming it in several builds', () => {
    expect(unqualifiedConflicts([h('ost-images-a-base', 'a', ['ost-images-base = 1-1']), h('ost-images-a-base', 'a', ['ost-images-base = 1-2']), h('ost-images-b-base', 'b', [])])).toEqual([]);
  });
  it('names both sets when two claim the same short name', () => {
    const issues = unqualifiedConflicts([h('ost-images-a-base', 'a', ['ost-images-base = 1-1']), h('ost-images-b-base', 'b', ['ost-images-base = 1-1'])]);
    expect(issues.map((i) => i.message)).toEqual([
      "'ost-images-base' is provided by more than one set: a (ost-images-a-base.rpm), b (ost-images-b-base.rpm); mark only one set 'package.default: true' per repository",
    ]);
  });
});
