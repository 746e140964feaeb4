// A test machine across nightlies, on real dnf over HTTP (the server's access log says exactly
// which packages were downloaded): after an engine-only nightly `dnf upgrade` downloads only the
// new engine package; after a base change it moves the whole chain in one transaction. Layer
// packages are install-only, so yesterday's chain stays installed and usable beside today's, and
// `ost-images remove-old` removes old builds except those a running VM (a real, paused qemu) uses.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installInto } from '../../src/consume/install.js';
import { verifyChain } from '../../src/consume/verify.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { packageLayers } from '../../src/package/package.js';
import { publish } from '../../src/publish/publish.js';
import type { BuildRecord } from '../../src/records/build.js';
import { Store } from '../../src/store/store.js';
import { dnf } from '../../src/tools/dnf.js';
import * as qemuImg from '../../src/tools/qemu-img.js';
import { installedNvrs } from '../../src/tools/rpmbuild.js';
import { cli, waitFor } from '../helpers/cli.js';
import { serveDirectory, type Server } from '../helpers/http.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { fakeBuild, publishedDemoChain } from '../helpers/tiny.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('upgrades');
const store = new Store(path.join(tmp, 'store'));
const repo = path.join(tmp, 'repo');
const root = path.join(tmp, 'machine');
const installDir = path.join(root, 'usr/share/ost-images');
let ls: LayerSet;
let server: Server;
let chain1: Record<string, BuildRecord>;
let engine2: BuildRecord;
let chain2: Record<string, BuildRecord>;
let vm: ChildProcess | undefined;

const nvr = (r: BuildRecord) => `ost-images-demo-${r.layer}-${r.version}-${r.release}`;
const rpmOf = (r: BuildRecord) => `/packages/${nvr(r)}.noarch.rpm`;

/** `dnf upgrade` as a test machine with the recommended setting runs it; returns the packages it downloaded. */
async function upgrade(): Promise<string[]> {
  server.mark();
  const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'ost-dnf-'));
  // installonly_limit=0: dnf itself never removes a build (see docs/test-machines.md: remove-old does, knowing which are in use).
  await dnf({ root, repoUrl: server.url, cacheDir, setopts: ['--setopt=installonly_limit=0'] }, ['upgrade']);
  removeTree(cacheDir);
  return (await server.settledRequests()).filter((r) => r.path.endsWith('.rpm')).map((r) => r.path).sort();
}

async function publishBuilds(recs: BuildRecord[]): Promise<void> {
  const rpms = (await packageLayers(ls, ls.order, store)).map((p) => p.rpm).filter((f) => recs.some((r) => f.endsWith(`${nvr(r)}.noarch.rpm`)));
  await publish(repo, rpms);
}

beforeAll(async () => {
  ls = loadLayerSet(writeLayerSet(demoSet({ isDefault: true })).layersDir, 'demo');
  chain1 = (await publishedDemoChain(ls, store, repo)).recs;
  server = await serveDirectory(repo);
  await installInto(root, server.url, ['ost-images-engine-installed']);
});

afterAll(() => {
  vm?.kill('SIGKILL');
  server?.stop();
  removeTree(tmp);
});

describe('dnf upgrade on a test machine', () => {
  it('after a nightly that changed only the engine layer, downloads only the new engine package', async () => {
    engine2 = await fakeBuild(store, 'demo', 'engine-installed', '20260102000000', chain1.upgrade, 0x55);
    await publishBuilds([engine2]);
    expect(await upgrade()).toEqual([rpmOf(engine2)]);
    expect(await installedNvrs(root)).toEqual([chain1.base!, chain1.engine!, engine2, chain1.upgrade!].map(nvr).sort());
  });

  it('after a nightly that changed the base, moves the whole chain forward in one transaction', async () => {
    const base = await fakeBuild(store, 'demo', 'base', '20260103000000', undefined, 0x12);
    const upgrade2 = await fakeBuild(store, 'demo', 'upgrade', '20260103000100', base, 0x23);
    const engine = await fakeBuild(store, 'demo', 'engine-installed', '20260103000200', upgrade2, 0x34);
    const host = await fakeBuild(store, 'demo', 'host-installed', '20260103000300', upgrade2, 0x45);
    chain2 = { base, upgrade: upgrade2, engine, host };
    await publishBuilds([base, upgrade2, engine, host]);
    // host-installed is not on this machine: not downloaded.
    expect(await upgrade()).toEqual([rpmOf(base), rpmOf(engine), rpmOf(upgrade2)].sort());
    expect(await installedNvrs(root)).toEqual([chain1.base!, chain1.upgrade!, chain1.engine!, engine2, base, upgrade2, engine].map(nvr).sort());
  });

  it("leaves yesterday's chains installed and intact beside today's", async () => {
    const images = async (top: BuildRecord) => (await verifyChain(path.join(installDir, top.image))).map((c) => path.basename(c.file));
    expect(await images(chain1.engine!)).toEqual([chain1.engine!.image, chain1.upgrade!.image, chain1.base!.image]);
    expect(await images(engine2)).toEqual([engine2.image, chain1.upgrade!.image, chain1.base!.image]);
    expect(await images(chain2.engine!)).toEqual([chain2.engine!.image, chain2.upgrade!.image, chain2.base!.image]);
    // A second upgrade with nothing new downloads nothing.
    expect(await upgrade()).toEqual([]);
  });
});

describe('ost-images remove-old on a test machine', () => {
  it('keeps the newest chain and every build a running VM uses, and removes the rest', async () => {
    // A VM on an overlay of yesterday's engine build (qemu paused before the guest runs: it has
    // opened every file of the backing chain, which is what matters).
    const overlay = path.join(tmp, 'vm-disk.qcow2');
    await qemuImg.create(overlay, { backing: path.join(installDir, engine2.image) });
    vm = spawn('qemu-system-x86_64', ['-S', '-display', 'none', '-nodefaults', '-machine', 'accel=tcg', '-m', '64', '-drive', `file=${overlay},format=qcow2,if=virtio`], { stdio: 'ignore' });
    // Wait until qemu holds every file of the chain open: what remove-old looks at. (Counting its
    // open files, as this did, could be satisfied before the disks were opened.) There is no
    // event for it, hence the polling; the deadline only bounds a hang.
    const chainFiles = [engine2, chain1.upgrade!, chain1.base!].map((r) => path.join(installDir, r.image));
    await waitFor(() => {
      try {
        const open = readdirSync(`/proc/${vm!.pid}/fd`).map((fd) => {
          try {
            return readlinkSync(`/proc/${vm!.pid}/fd/${fd}`);
          } catch {
            return '';
          }
        });
        return chainFiles.every((f) => open.includes(f));
      } catch {
        return false;
      }
    }, 300_000, 'qemu to open every file of its disk chain');
    const r = await cli(['remove-old', '--root', root, '--keep', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { removed: string[]; inUse: { nvr: string }[] };
    expect(out.removed).toEqual([nvr(chain1.engine!)]);
    expect(out.inUse.map((u) => u.nvr).sort()).toEqual([chain1.base!, chain1.upgrade!, engine2].map(nvr).sort());
    expect(await installedNvrs(root)).toEqual([chain1.base!, chain1.upgrade!, engine2, chain2.base!, chain2.upgrade!, chain2.engine!].map(nvr).sort());
    // The chain under the VM's overlay still resolves and checks clean.
    expect((await verifyChain(path.join(installDir, engine2.image))).length).toBe(3);
  }, 600_000);

  it('once the VM is gone, removes its chain; today\'s stays whole', async () => {
    vm!.kill('SIGKILL');
    await new Promise((r) => vm!.once('close', r));
    vm = undefined;
    const dry = JSON.parse((await cli(['remove-old', '--root', root, '--keep', '1', '--dry-run', '--json'])).stdout) as { removed: string[] };
    expect(dry.removed.sort()).toEqual([chain1.base!, chain1.upgrade!, engine2].map(nvr).sort());
    expect((await installedNvrs(root)).length).toBe(6);
    const r = await cli(['remove-old', '--root', root, '--keep', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(await installedNvrs(root)).toEqual([chain2.base!, chain2.upgrade!, chain2.engine!].map(nvr).sort());
    expect((await verifyChain(path.join(installDir, chain2.engine!.image))).length).toBe(3);
  });
});
