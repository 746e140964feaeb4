// A base layer from a downloaded image, through the real CLI: a small qcow2 (a busybox disk)
// served on 127.0.0.1 is downloaded, verified, converted, grown to the set's size (partition and
// ext4), given the root key, host name and cloud-init switch; a forced rebuild is served from the
// download cache without a request; a wrong checksum fails the build and leaves nothing.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachDisk, mountRoot } from '../../src/builder/disk.js';
import { withScope } from '../../src/core/scope.js';
import { Store } from '../../src/store/store.js';
import * as qemuImg from '../../src/tools/qemu-img.js';
import { cli } from '../helpers/cli.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { serveFiles, type RangeServer } from '../helpers/range-server.js';
import { makeBusyboxDisk } from '../helpers/tiny.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('image-base');
const storeDir = path.join(tmp, 'store');
const store = new Store(storeDir);
const env = { OST_IMAGES_KVM: '0' };
let server: RangeServer;
let sha: string;

const set = (sha256: string) => ({
  'set.yaml': 'distro: {family: debian, name: Debian, version: "12", codename: bookworm}\nimage: {size: 2G}\npackage: {prefix: ost-images}\n',
  'base/layer.yaml': `base:\n  image:\n    url: ${server.url}/cloud.qcow2\n    sha256: ${sha256}\n  hostname: cloudy\n`,
});

beforeAll(async () => {
  const image = path.join(tmp, 'cloud.qcow2');
  const work = mkdtempSync(path.join(tmp, 'mk-'));
  await makeBusyboxDisk(image, work);
  rmSync(work, { recursive: true });
  const bytes = readFileSync(image);
  sha = createHash('sha256').update(bytes).digest('hex');
  server = await serveFiles({ '/cloud.qcow2': bytes });
});

afterAll(async () => {
  await server?.stop();
  removeTree(tmp);
});

describe('a base from a cloud image', () => {
  it('is downloaded, verified, grown to the set size and given the root key', async () => {
    const { layersDir } = writeLayerSet(set(sha), 'cloud');
    const r = await cli(['build', '--set', 'cloud', '--layers-dir', layersDir, '--store', storeDir, '--backend', 'chroot', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('sha256 verified');
    const rec = store.current('cloud', 'base')!;
    const file = store.imagePath('cloud', rec.image);
    expect((await qemuImg.info(file))['virtual-size']).toBe(2 * 1024 ** 3);
    expect(rec.packages).toMatchObject({ count: 2 });
    await withScope(async (scope) => {
      const w = mkdtempSync(path.join(tmp, 'look-'));
      const ro = path.join(w, 'look.qcow2');
      await qemuImg.create(ro, { backing: file });
      const disk = await attachDisk(scope, ro, w);
      expect(disk.partitions).toHaveLength(1);
      const root = await mountRoot(scope, disk.partitions[0]!, w);
      // The 1 GiB disk's file system now fills the 2 GiB one.
      const fs = statfsSync(root);
      expect(fs.blocks * fs.bsize).toBeGreaterThan(1.8 * 1024 ** 3);
      expect(readFileSync(path.join(root, 'root/.ssh/authorized_keys'), 'utf8')).toBe(readFileSync(store.imagePath('cloud', rec.sshKey!.public), 'utf8'));
      expect(readFileSync(path.join(root, 'etc/hostname'), 'utf8')).toBe('cloudy\n');
      expect(existsSync(path.join(root, 'etc/cloud/cloud-init.disabled'))).toBe(true);
    });
  });

  it('a rebuild takes the image from the download cache without a request', async () => {
    const { layersDir } = writeLayerSet(set(sha), 'cloud');
    const before = server.requests.length;
    const r = await cli(['build', '--set', 'cloud', '--layers-dir', layersDir, '--store', storeDir, '--backend', 'chroot', '--force'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('using cached cloud.qcow2');
    expect(server.requests.length).toBe(before);
    expect(store.builds('cloud', 'base')).toHaveLength(2);
  });

  it('a wrong checksum fails the build, keeps nothing downloaded and leaves no partial layer', async () => {
    const { layersDir } = writeLayerSet(set('e'.repeat(64)), 'cloud');
    const r = await cli(['build', '--set', 'cloud', '--layers-dir', layersDir, '--store', storeDir, '--backend', 'chroot'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`does not match the expected ${'e'.repeat(64)}; the download was deleted`);
    expect(readdirSync(path.join(storeDir, 'downloads')).filter((f) => !f.endsWith(sha))).toEqual([]);
    expect(readdirSync(store.imagesDir('cloud')).filter((f) => f.includes('partial'))).toEqual([]);
    expect(store.builds('cloud', 'base')).toHaveLength(2);
  });

  it('a definition without a way to check the download is bad input (exit 2)', async () => {
    const files = set(sha);
    files['base/layer.yaml'] = `base:\n  image:\n    url: ${server.url}/cloud.qcow2\n`;
    const { layersDir } = writeLayerSet(files, 'cloud');
    const r = await cli(['validate', '--set', 'cloud', '--layers-dir', layersDir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("base/layer.yaml:3: .base.image: give exactly one of 'sha256' and 'checksum_url', so the download can be checked");
  });
});
