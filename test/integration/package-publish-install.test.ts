// Real qemu-img, rpmbuild, createrepo_c, dnf and an HTTP server on tiny synthetic chains: the
// packaging, publishing and consuming stages without the cost of building real images.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installInto } from '../../src/consume/install.js';
import { verifyChain } from '../../src/consume/verify.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { ConfigError } from '../../src/core/errors.js';
import { packageLayers, type PackageResult } from '../../src/package/package.js';
import { publish } from '../../src/publish/publish.js';
import type { BuildRecord } from '../../src/records/build.js';
import { Store } from '../../src/store/store.js';
import { readHeader } from '../../src/tools/rpmbuild.js';
import { testTmp, removeTree } from '../helpers/tmp.js';
import { serveDirectory } from '../helpers/http.js';
import { demoSet } from '../helpers/sets.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { fakeBuild, publishedDemoChain } from '../helpers/tiny.js';

const tmp = testTmp('int');
const store = new Store(path.join(tmp, 'store'));
const repo = path.join(tmp, 'repo');
let ls: LayerSet;
let recs: Record<string, BuildRecord>;
let pkgs: PackageResult[];
let server: Awaited<ReturnType<typeof serveDirectory>>;

beforeAll(async () => {
  ls = loadLayerSet(writeLayerSet(demoSet({ isDefault: true })).layersDir, 'demo');
  recs = (await publishedDemoChain(ls, store, repo)).recs;
  // Packaging again finds every package made: their paths, in layer order.
  pkgs = await packageLayers(ls, ls.order, store);
  server = await serveDirectory(repo);
});

afterAll(() => {
  server?.stop();
  removeTree(tmp);
});

describe('layer packages', () => {
  it('pin the exact parent build and provide the short name of the default set', async () => {
    const h = Object.fromEntries(await Promise.all(pkgs.map(async (p) => [p.layer, await readHeader(p.rpm)] as const)));
    expect(h.base!.requires).toEqual([]);
    expect(h.upgrade!.requires).toEqual(['ost-images-demo-base = 12-20260101000000']);
    expect(h['engine-installed']!.requires).toEqual(['ost-images-demo-upgrade = 12-20260101000100']);
    expect(h['host-installed']!.requires).toEqual(['ost-images-demo-upgrade = 12-20260101000100']);
    expect(h['engine-installed']!.name).toBe('ost-images-demo-engine-installed');
    expect(h['engine-installed']!.provides).toEqual([
      'installonlypkg(vm)',
      'ost-images-demo-engine-installed = 12-20260101000200',
      'ost-images-engine-installed = 12-20260101000200',
      `ost-images-key(${recs.engine!.key})`,
      'ost-images-layer(demo/engine-installed) = 12-20260101000200',
    ]);
  });

  it('are noarch, zstd-compressed, with read-only images, their build record and the base key pair', () => {
    const rpm = pkgs.find((p) => p.layer === 'base')!.rpm;
    const q = execFileSync('rpm', ['-qp', '--qf', '%{ARCH} %{PAYLOADCOMPRESSOR} %{PAYLOADFLAGS}\\n', rpm]).toString().trim();
    expect(q).toBe('noarch zstd 6T0L27');
    const files = execFileSync('rpm', ['-qp', '--qf', '[%{FILEMODES:perms} %{FILENAMES}\\n]', rpm]).toString().trim().split('\n');
    expect(files).toEqual([
      'drwxr-xr-x /usr/share/ost-images',
      '-r--r--r-- /usr/share/ost-images/demo-base-12-20260101000000.build.json',
      '-rw------- /usr/share/ost-images/demo-base-12-20260101000000.id_ed25519',
      '-rw-r--r-- /usr/share/ost-images/demo-base-12-20260101000000.id_ed25519.pub',
      '-r--r--r-- /usr/share/ost-images/demo-base-12-20260101000000.qcow2',
      // The set's key pair under the name the system-test framework looks for.
      '-rw------- /usr/share/ost-images/demo_id_rsa',
      '-rw-r--r-- /usr/share/ost-images/demo_id_rsa.pub',
    ]);
  });

  it('escape user text for rpm: a literal % in a description survives', () => {
    const rpm = pkgs.find((p) => p.layer === 'base')!.rpm;
    expect(execFileSync('rpm', ['-qp', '--qf', '%{SUMMARY}', rpm]).toString()).toBe('Debian 12 base layer image: Fresh install with 100% fewer packages');
  });

  it('are not built again for a build that already has one', async () => {
    const again = await packageLayers(ls, ['upgrade'], store);
    expect(again[0]!.action).toBe('exists');
  });
});

describe('a test machine', () => {
  it('installs exactly base, upgrade and engine-installed with `dnf install ost-images-engine-installed` over HTTP', async () => {
    const root = path.join(tmp, 'root1');
    const r = await installInto(root, server.url, ['ost-images-engine-installed']);
    expect(r.installed).toEqual([
      'ost-images-demo-base-12-20260101000000',
      'ost-images-demo-engine-installed-12-20260101000200',
      'ost-images-demo-upgrade-12-20260101000100',
    ]);
    const top = path.join(root, 'usr/share/ost-images', recs.engine!.image);
    const chain = await verifyChain(top);
    expect(chain.map((c) => path.basename(c.file))).toEqual([recs.engine!.image, recs.upgrade!.image, recs.base!.image]);
    expect(chain.every((c) => c.file.startsWith(root))).toBe(true);
    expect(statSync(top).mode & 0o777).toBe(0o444);
  });
});

describe('publishing', () => {
  it('switches to a new snapshot in one step and keeps the previous one', async () => {
    const before = readlinkSync(path.join(repo, 'current'));
    const engine2 = await fakeBuild(store, 'demo', 'engine-installed', '20260102000000', recs.upgrade, 0x55);
    const [p] = await packageLayers(ls, ['engine-installed'], store);
    const r = await publish(repo, [p!.rpm]);
    expect(r.added).toEqual([path.basename(p!.rpm)]);
    expect(r.packages).toBe(5);
    const after = readlinkSync(path.join(repo, 'current'));
    expect(after).not.toBe(before);
    expect(existsSync(path.join(repo, before, 'repodata', 'repomd.xml'))).toBe(true);
    const root = path.join(tmp, 'root2');
    const inst = await installInto(root, server.url, ['ost-images-engine-installed']);
    expect(inst.installed).toContain(`ost-images-demo-engine-installed-12-${engine2.release}`);
  });

  it('refuses a repository in which two sets would claim the same short names, changing nothing', async () => {
    const other = loadLayerSet(writeLayerSet(demoSet({ isDefault: true }), 'other').layersDir, 'other');
    const ostore = new Store(path.join(tmp, 'store-other'));
    await fakeBuild(ostore, 'other', 'base', '20260103000000');
    const [p] = await packageLayers(other, ['base'], ostore);
    const link = readlinkSync(path.join(repo, 'current'));
    const pool = readdirSync(path.join(repo, 'packages')).sort();
    const err = await publish(repo, [p!.rpm]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/'ost-images-base' is provided by more than one set: (demo|other) .*, (demo|other) /);
    expect(readlinkSync(path.join(repo, 'current'))).toBe(link);
    expect(readdirSync(path.join(repo, 'packages')).sort()).toEqual(pool);
  });
});
