// The default set end to end on the real tools: build all four layers, package, publish into a
// temporary repository, serve it over HTTP on 127.0.0.1, install `ost-images-engine-installed` with
// dnf into a scratch root, check the installed chain and boot the installed engine image.
//
// Debian's archives are read through a cache on 127.0.0.1 frozen for the run
// (test/helpers/mirror-cache.ts; the sets' URLs rewritten in a copy of layers/): every build of the
// run sees one state of the mirror, as "the same inputs" demands, so rebuilding a layer to check
// it (verify --rebuild) cannot be undone by a push to Debian's mirror in between.
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, lstatSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PackageDiff } from '../../src/records/package-diff.js';
import { MANIFEST_SCHEMA, type BuildManifest } from '../../src/store/manifest.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import { Store } from '../../src/store/store.js';
import { mountImageReadOnly } from '../../src/builder/disk.js';
import type { ReproVerdict } from '../../src/jobs/reproduce.js';
import { withScope } from '../../src/core/scope.js';
import { readHeader } from '../../src/tools/rpmbuild.js';
import { dnf } from '../../src/tools/dnf.js';
import type { NightlyReport } from '../../src/jobs/nightly.js';
import { BIN, cli } from '../helpers/cli.js';
import { ScratchRepo, jobOutput, jobSpan, type PipelineRun } from '../helpers/gitlab-ci-local.js';
import { runUpstreamFile } from '../../src/jobs/run-upstream.js';
import { readSnapshot, servedStamp } from '../../src/repository/snapshot.js';
import { nvr } from '../../src/plan/retention.js';
import { destroyDomain, ensureLibvirt } from '../helpers/libvirt.js';
import { output, run } from '../helpers/run.js';
import { freePort } from '../../src/consume/guest-ssh.js';
import { kvmUsable } from '../../src/tools/host.js';
import { serveDirectory } from '../helpers/http.js';
import { removeTree, testTmp } from '../helpers/tmp.js';
import { DEBIAN_ARCHIVES, freezeLayers, startMirrorCache, type MirrorCache } from '../helpers/mirror-cache.js';
import type { LayerSet } from '../../src/definitions/types.js';

const tmp = testTmp('e2e');
const storeDir = path.join(tmp, 'store');
const repo = path.join(tmp, 'repo');
const root = path.join(tmp, 'root');
/** The store, and once the mirror cache is up, the layers directory reading through it. */
const common = ['--store', storeDir];
/** layers/ with Debian's archives read through the run's frozen mirror. */
let frozen: string;
let ls: LayerSet;
let mirror: MirrorCache;
const store = new Store(storeDir);
let server: Awaited<ReturnType<typeof serveDirectory>>;
/** The default set with the engine layer edited (made by one test, used by the next). */
let layers: string;

const MIN = 60_000;
const vmDir = path.join(tmp, 'vms');
// libvirt's domain names are the machine's: this run's carry its pid, so a run beside it (another
// checkout's suite, CI on the same host) neither collides with them nor has them removed.
const VM_PREFIX = `e2e${process.pid}-`;
const VM = { engine: `${VM_PREFIX}engine`, host0: `${VM_PREFIX}host0`, host1: `${VM_PREFIX}host1`, today: `${VM_PREFIX}today` };
/** The generated pipeline's scratch checkout, and its staging repository. */
const scratch = new ScratchRepo(path.join(tmp, 'pipeline'));
const staging = path.join(tmp, 'staging');
let pipeline: PipelineRun;
let stopLibvirt: (() => Promise<void>) | undefined;

async function ok(args: string[]): Promise<string> {
  const r = await cli(args);
  expect(r.code, `ost-images ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

describe('the default set, debian12', () => {
  beforeAll(async () => {
    mirror = await startMirrorCache(DEBIAN_ARCHIVES, path.join(tmp, 'mirror'));
    frozen = freezeLayers(path.resolve('layers'), path.join(tmp, 'layers-frozen'), mirror.url);
    ls = loadLayerSet(frozen, 'debian12');
    common.push('--layers-dir', frozen);
    await ok(['build', ...common]);
    await ok(['package', ...common]);
    await ok(['publish', ...common, '--repo', repo]);
    server = await serveDirectory(repo);
    stopLibvirt = await ensureLibvirt(path.join(tmp, 'libvirt'));
  }, 30 * MIN);

  afterAll(async () => {
    scratch.stopAll();
    // VMs a failed test left behind, then the daemons this run started.
    for (const name of Object.values(VM)) await cli(['vm', 'rm', name, '--vm-dir', vmDir]);
    await stopLibvirt?.();
    server?.stop();
    await mirror?.stop();
    // Gigabytes of images and an install root; OST_TEST_KEEP=1 keeps them for a post-mortem.
    removeTree(tmp);
  });

  it('builds four layers, each an overlay on its parent named by a relative backing file', () => {
    const recs = ls.order.map((l) => store.current('debian12', l)!);
    expect(recs.map((r) => r.layer)).toEqual(['base', 'upgrade', 'engine-installed', 'host-installed']);
    expect(recs.map((r) => r.parent?.layer)).toEqual([undefined, 'base', 'upgrade', 'upgrade']);
    // The upgrade really changed the system (the release suite alone is months behind -security).
    expect(recs[1]!.allocatedSize).toBeGreaterThan(20 * 2 ** 20);
  });

  it("records what each layer changed in packages: the engine layer's installs with their dependencies, the upgrade layer's upgrades; both files ship in the RPMs", async () => {
    const diff = (l: string) => JSON.parse(readFileSync(store.imagePath('debian12', store.current('debian12', l)!.packages!.diff), 'utf8')) as PackageDiff;
    const names = (xs: { name: string }[]) => xs.map((x) => x.name);
    const engine = diff('engine-installed');
    expect(names(engine.added)).toEqual(expect.arrayContaining(['openjdk-17-jre-headless', 'postgresql', 'postgresql-15', 'libpq5', 'postgresql-common']));
    expect(engine.removed).toEqual([]);
    expect(engine.flagged).toBeUndefined();
    const upgrade = diff('upgrade');
    expect(upgrade.upgraded.length).toBeGreaterThan(0);
    for (const u of upgrade.upgraded) expect(u.to).not.toBe(u.from);
    expect(names(diff('base').added)).toEqual(expect.arrayContaining(['systemd', 'openssh-server', 'grub-pc']));
    const out = await ok(['diff', 'engine-installed', ...common]);
    expect(out).toMatch(/^  \+ postgresql-15 15\./m);
    for (const l of ls.order) {
      const rec = store.current('debian12', l)!;
      const files = await output('rpm', ['-qlp', path.join(store.rpmsDir('debian12'), `ost-images-debian12-${l}-${rec.version}-${rec.release}.noarch.rpm`)]);
      expect(files).toContain(`/usr/share/ost-images/${rec.packages!.list}\n`);
      expect(files).toContain(`/usr/share/ost-images/${rec.packages!.diff}\n`);
    }
  });

  it('writes a build manifest that validates against its schema and matches the store', () => {
    const m = JSON.parse(readFileSync(path.join(storeDir, 'debian12', 'manifest.json'), 'utf8')) as BuildManifest;
    const validate = new Ajv({ allErrors: true, strict: true }).compile(MANIFEST_SCHEMA);
    expect(validate(m), JSON.stringify(validate.errors)).toBe(true);
    expect(m.layers.map((l) => l.layer)).toEqual(ls.order);
    const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    for (const l of m.layers) {
      const rec = store.current('debian12', l.layer)!;
      expect(l.key).toBe(rec.key);
      expect(l.image.sha256).toBe(sha(store.imagePath('debian12', rec.image)));
      expect(l.package!.sha256).toBe(sha(path.join(store.rpmsDir('debian12'), l.package!.file)));
    }
    expect(m.layers.find((l) => l.layer === 'engine-installed')!.flat!.package!.name).toBe('ost-images-debian12-engine-installed-flat');
  });

  it('installs exactly base, upgrade and engine-installed with `dnf install ost-images-engine-installed` over HTTP', async () => {
    const out = await ok(['install', '--repo', server.url, '--root', root, '--json', 'ost-images-engine-installed']);
    const want = ['base', 'engine-installed', 'upgrade'].map((l) => {
      const r = store.current('debian12', l)!;
      return `ost-images-debian12-${l}-${r.version}-${r.release}`;
    });
    expect((JSON.parse(out) as { installed: string[] }).installed).toEqual(want);
  }, 10 * MIN);

  it('the names the framework opens point at the installed builds; the key is the one the set was built with', async () => {
    const dir = path.join(root, 'usr/share/ost-images');
    for (const l of ['base', 'upgrade', 'engine-installed']) {
      const rec = store.current('debian12', l)!;
      expect(readlinkSync(path.join(dir, `debian12-${l}.qcow2`))).toBe(rec.image);
      expect(readlinkSync(path.join(dir, `debian12-${l}-pkglist.txt`))).toBe(rec.packages!.list);
    }
    // One key pair per set, generated once with the first base build and kept in the store.
    expect(readFileSync(path.join(dir, 'debian12_id_rsa'), 'utf8')).toBe(readFileSync(path.join(storeDir, 'debian12', 'root-key', 'id_ed25519'), 'utf8'));
    expect(statSync(path.join(dir, 'debian12_id_rsa')).mode & 0o777).toBe(0o600);
    expect((await run('rpm', ['--root', root, '-Va'])).stdout).toBe('');
  });

  it('a consumer in plain shell, knowing only the fixed names, makes a disk on the name, starts it with virsh create and logs in with debian12_id_rsa', async () => {
    // The system-test framework's way, written the way such a framework writes it: no ost-images,
    // only OST_IMAGES_DIR, qemu-img, a domain XML and virsh. User-mode networking with SSH
    // forwarded to 127.0.0.1 (no libvirt network: its bridge is a private range).
    const script = String.raw`
      set -eu
      DISTRO=debian12
      qemu-img create -q -f qcow2 -b "$OST_IMAGES_DIR/$DISTRO-engine-installed.qcow2" -F qcow2 "$WORK/engine-root.qcow2"
      cat > "$WORK/engine.xml" <<EOF
      <domain type='$DOMAIN_TYPE' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
        <name>$NAME</name>
        <memory unit='MiB'>1024</memory>
        <vcpu>2</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
        <cpu mode='maximum' migratable='off'/>
        <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>
        <devices>
          <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$WORK/engine-root.qcow2'/><target dev='vda' bus='virtio'/></disk>
          <serial type='file'><source path='$WORK/console.log'/></serial>
        </devices>
        <qemu:commandline>
          <qemu:arg value='-netdev'/><qemu:arg value='user,id=n0,hostfwd=tcp:127.0.0.1:$PORT-:22'/>
          <qemu:arg value='-device'/><qemu:arg value='virtio-net-pci,netdev=n0,bus=pci.0,addr=0x1f'/>
        </qemu:commandline>
      </domain>
      EOF
      virsh -q -c qemu:///system create "$WORK/engine.xml"
      # Wait for sshd: a bounded number of attempts, each a real login attempt.
      for i in $(seq 1 300); do
        if ssh -q -i "$OST_IMAGES_DIR/${"${DISTRO}"}_id_rsa" -p "$PORT" -o BatchMode=yes -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 root@127.0.0.1 'cat /etc/ost-images-role; hostname'; then
          exit 0
        fi
        sleep 2
      done
      echo "no SSH login" >&2; tail -20 "$WORK/console.log" >&2; exit 1
    `;
    const work = mkdtempSync(path.join(tmp, 'consumer-'));
    const name = `ost-e2e-consumer-${process.pid}`;
    const port = await freePort();
    try {
      // The script is indented with this file; the here-document's end marker must start its line.
      // Asynchronous: a whole boot inside spawnSync blocked this worker for minutes, and vitest's
      // RPC to a blocked worker times out (issue 18: "Timeout calling onTaskUpdate").
      const r = await run('bash', ['-c', script.replace(/^ {6}/gm, '')], {
        env: { ...process.env, OST_IMAGES_DIR: path.join(root, 'usr/share/ost-images'), WORK: work, NAME: name, PORT: String(port), DOMAIN_TYPE: (await kvmUsable()) ? 'kvm' : 'qemu' },
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim().split('\n')).toEqual(['engine', 'debian12']);
    } finally {
      await destroyDomain(name);
    }
  }, 15 * MIN);

  it('ost-images vm: one engine and two host VMs at once from one chain, an SSH command in each, on overlays of the exact builds', async () => {
    await ok(['install', '--repo', server.url, '--root', root, 'ost-images-host-installed']);
    const vmArgs = ['--images-dir', path.join(root, 'usr/share/ost-images'), '--vm-dir', vmDir, '--memory', '1024', '--json'];
    const created = await Promise.all([
      ok(['vm', 'create', VM.engine, '--layer', 'engine-installed', ...vmArgs]),
      ok(['vm', 'create', VM.host0, '--layer', 'host-installed', ...vmArgs]),
      ok(['vm', 'create', VM.host1, '--layer', 'host-installed', ...vmArgs]),
    ]);
    const vms = created.map((o) => JSON.parse(o) as { name: string; port: number; buildFile: string; backingChain: string[] });
    expect(new Set(vms.map((v) => v.port)).size).toBe(3);
    const engine = store.current('debian12', 'engine-installed')!;
    // Backed by the build file itself, never the name that moves on upgrades.
    expect(vms[0]!.buildFile).toBe(path.join(root, 'usr/share/ost-images', engine.image));
    expect(vms[0]!.backingChain.slice(1).map((f) => path.basename(f))).toEqual([engine.image, store.current('debian12', 'upgrade')!.image, store.current('debian12', 'base')!.image]);
    for (const [name, role] of [[VM.engine, 'engine'], [VM.host0, 'host'], [VM.host1, 'host']]) {
      expect((await ok(['vm', 'ssh', name!, '--vm-dir', vmDir, '--', 'cat', '/etc/ost-images-role'])).trim()).toBe(role);
    }
    // The image carries no host keys: each VM made its own at first boot, so two VMs of one build
    // do not share them (nor a machine-id).
    const keyOf = async (name: string) => (await ok(['vm', 'ssh', name, '--vm-dir', vmDir, '--', 'cat', '/etc/ssh/ssh_host_ed25519_key.pub', '/etc/machine-id'])).trim();
    const [k0, k1] = [await keyOf(VM.host0), await keyOf(VM.host1)];
    expect(k0).toMatch(/^ssh-ed25519 AAAA\S+ root@debian12\n[0-9a-f]{32}$/);
    expect(k1).toMatch(/^ssh-ed25519 AAAA\S+ root@debian12\n[0-9a-f]{32}$/);
    expect(k0.split('\n')[0]).not.toBe(k1.split('\n')[0]);
    expect(k0.split('\n')[1]).not.toBe(k1.split('\n')[1]);
    const ls = JSON.parse(await ok(['vm', 'ls', '--vm-dir', vmDir, '--json'])) as { name: string; state: string }[];
    expect(ls.filter((v) => v.name.startsWith(VM_PREFIX)).map((v) => `${v.name}:${v.state}`).sort()).toEqual([`${VM.engine}:running`, `${VM.host0}:running`, `${VM.host1}:running`]);
    for (const name of [VM.host0, VM.host1]) await ok(['vm', 'rm', name, '--vm-dir', vmDir]);
    // The engine VM stays, stopped, for the upgrade below: a stopped VM's build must survive too.
    await ok(['vm', 'stop', VM.engine, '--vm-dir', vmDir]);
    expect(readdirSync(vmDir).filter((f) => f.startsWith(`${VM_PREFIX}host`))).toEqual([]);
  }, 20 * MIN);

  it('no layer carries host keys, a TLS key, a machine-id, seeds or the logs of its build; the first-boot unit is in the base', async () => {
    for (const l of ls.order) {
      const image = store.imagePath('debian12', store.current('debian12', l)!.image);
      await withScope(async (scope) => {
        const r = await mountImageReadOnly(scope, image, mkdtempSync(path.join(tmp, `peek-${l}-`)));
        const present = (p: string) => statSync(path.join(r, p), { throwIfNoEntry: false }) !== undefined;
        expect(readdirSync(path.join(r, 'etc/ssh')).filter((f) => f.startsWith('ssh_host_')), l).toEqual([]);
        expect(present('etc/ssl/private/ssl-cert-snakeoil.key'), l).toBe(false);
        expect(readFileSync(path.join(r, 'etc/machine-id'), 'utf8'), l).toBe('');
        expect(present('var/lib/systemd/random-seed'), l).toBe(false);
        const logs = (readdirSync(path.join(r, 'var/log'), { recursive: true }) as string[]).filter((f) => {
          // lstat: a package's symlink (systemd's var/log/README) is not a log of the build.
          const st = lstatSync(path.join(r, 'var/log', f), { throwIfNoEntry: false });
          return st?.isFile() && st.size > 0;
        });
        expect(logs, l).toEqual([]);
        expect(readlinkSync(path.join(r, 'etc/systemd/system/sysinit.target.wants/ost-images-firstboot.service')), l).toBe('/etc/systemd/system/ost-images-firstboot.service');
      });
    }
  }, 10 * MIN);

  // One extra build of the set: every layer made again on the very parents it was made on.
  it("every layer built again from its recorded inputs: the same file trees (PostgreSQL's declared cluster files apart), the same base bytes and base package payload", async () => {
    const r = await cli(['verify', ...common, '--rebuild', ...ls.order, '--json']);
    const verdicts = JSON.parse(r.stdout) as ReproVerdict[];
    expect(r.code, `${r.stderr}\n${JSON.stringify(verdicts, null, 1)}`).toBe(0);
    expect(verdicts.map((v) => [v.layer, v.status])).toEqual(ls.order.map((l) => [l, 'identical']));
    for (const v of verdicts) expect(v.tree!.differing, v.layer).toBe(0);
    const base = verdicts.find((v) => v.layer === 'base')!;
    expect(base.image!.bytesIdentical).toBe(true);
    expect(base.payload!.files).toBe(base.payload!.rebuiltFiles);
    expect(base.payload!.digest).toBe(base.payload!.rebuiltDigest);
    // Above the base the overlay's bytes are not promised (docs/reproducible.md), and the package
    // payload holds them: only the tree is compared there.
    expect(verdicts.filter((v) => v.layer !== 'base').every((v) => v.image!.guaranteed === false)).toBe(true);
    // What differs in the engine layer is exactly what its layer.yaml declares, and no more.
    const engine = verdicts.find((v) => v.layer === 'engine-installed')!;
    expect(engine.tree!.known.length).toBeGreaterThan(0);
    expect(engine.tree!.known.every((k) => k.path.startsWith('/var/lib/postgresql/15/main/'))).toBe(true);
    expect(verdicts.filter((v) => v.layer !== 'engine-installed').every((v) => v.tree!.known.length === 0)).toBe(true);
  }, 40 * MIN);

  it('resolves the whole installed chain inside the install root, and every layer passes qemu-img check', async () => {
    const dir = path.join(root, 'usr/share/ost-images');
    const engine = store.current('debian12', 'engine-installed')!;
    const chain = JSON.parse(await output('qemu-img', ['info', '--backing-chain', '--output=json', path.join(dir, engine.image)])) as { filename: string }[];
    expect(chain.map((c) => path.basename(c.filename))).toEqual(['engine-installed', 'upgrade', 'base'].map((l) => store.current('debian12', l)!.image));
    expect(chain.every((c) => c.filename.startsWith(dir))).toBe(true);
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.qcow2'))) await output('qemu-img', ['check', '-q', path.join(dir, f)]);
    const out = await ok(['verify', '--json', path.join(dir, engine.image)]);
    expect((JSON.parse(out) as unknown[]).length).toBe(3);
  });

  // Its boot with SSH login is the nightly's below, which boots the flattened variant it builds.
  it('the flattened engine image stands alone: its own package, no Requires, a chain of one image', async () => {
    const engine = store.current('debian12', 'engine-installed')!;
    const flatRoot = path.join(tmp, 'root-flat');
    const out = await ok(['install', '--repo', server.url, '--root', flatRoot, '--json', 'ost-images-engine-installed-flat']);
    expect((JSON.parse(out) as { installed: string[] }).installed).toEqual([`ost-images-debian12-engine-installed-flat-${engine.version}-${engine.release}`]);
    const flat = path.join(flatRoot, 'usr/share/ost-images', `debian12-engine-installed-flat-${engine.version}-${engine.release}.qcow2`);
    const chain = JSON.parse(await ok(['verify', '--json', flat])) as unknown[];
    expect(chain).toHaveLength(1);
    expect(JSON.parse(await output('qemu-img', ['info', '--output=json', flat])) as { 'backing-filename'?: string }).not.toHaveProperty('backing-filename');
  }, 15 * MIN);

  it('a custom-package layer built from a locally made .deb on upgrade contains that package', async () => {
    const src = path.join(tmp, 'deb-src');
    mkdirSync(path.join(src, 'DEBIAN'), { recursive: true });
    mkdirSync(path.join(src, 'usr/share/ost-test-hello'), { recursive: true });
    writeFileSync(path.join(src, 'DEBIAN/control'), 'Package: ost-test-hello\nVersion: 1.2-3\nArchitecture: all\nMaintainer: test <test@example.invalid>\nDepends: bc\nDescription: a package made by the test\n');
    writeFileSync(path.join(src, 'usr/share/ost-test-hello/hello.txt'), 'hello\n');
    const debs = path.join(tmp, 'debs');
    mkdirSync(debs);
    await output('dpkg-deb', ['--build', '--root-owner-group', src, path.join(debs, 'ost-test-hello_1.2-3_all.deb')]);
    const out = JSON.parse(await ok(['build', ...common, '--offline', '--with-packages', debs, '--on', 'upgrade', '--name', 'my-test', '--package', '--json'])) as { layers: { layer: string; action: string }[]; package: { rpm: string } };
    expect(out.layers.map((l) => `${l.layer}:${l.action}`)).toEqual(['base:reused', 'upgrade:reused', 'my-test:built']);
    const rec = store.current('debian12', 'my-test')!;
    const d = JSON.parse(readFileSync(store.imagePath('debian12', rec.packages!.diff), 'utf8')) as PackageDiff;
    // The package and the dependency apt pulled in for it, from the mirror.
    expect(d.added.map((a) => `${a.name} ${a.version}`)).toEqual(expect.arrayContaining(['ost-test-hello 1.2-3', expect.stringMatching(/^bc /)]));
    expect(await output('rpm', ['-qp', '--requires', out.package.rpm])).toContain(`ost-images-debian12-upgrade = 12-${store.current('debian12', 'upgrade')!.release}`);
  }, 10 * MIN);

  it('a builder with an empty store takes the whole published chain from the repository, byte for byte, and builds nothing', async () => {
    const empty = path.join(tmp, 'store-empty');
    // The upstream digests the publishing build used: a mirror update in between must not make
    // this second builder's keys differ (with the network it would fetch them itself).
    mkdirSync(path.join(empty, 'debian12'), { recursive: true });
    cpSync(path.join(storeDir, 'debian12', 'upstream.json'), path.join(empty, 'debian12', 'upstream.json'));
    const out = await ok(['build', '--store', empty, '--layers-dir', frozen, '--cache-repo', server.url, '--offline', '--json']);
    expect((JSON.parse(out) as { layers: { action: string }[] }).layers.map((l) => l.action)).toEqual(['fetched', 'fetched', 'fetched', 'fetched']);
    const fresh = new Store(empty);
    const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    for (const l of ls.order) {
      const [a, b] = [store.current('debian12', l)!, fresh.current('debian12', l)!];
      expect(b.key).toBe(a.key);
      expect(sha(fresh.imagePath('debian12', b.image))).toBe(sha(store.imagePath('debian12', a.image)));
    }
  }, 10 * MIN);

  it('a run with no change builds and packages nothing', async () => {
    // --offline: the digests the build used, so a mirror update between the two runs cannot
    // make this test rebuild anything.
    const out = await ok(['build', ...common, '--json', '--offline']);
    expect((JSON.parse(out) as { layers: { action: string }[] }).layers.map((l) => l.action)).toEqual(['reused', 'reused', 'reused', 'reused']);
    const plan = JSON.parse(await ok(['plan', ...common, '--json', '--offline'])) as { entries: { action: string; reason: string }[] };
    expect(plan.entries.every((e) => e.action === 'reuse' && e.reason.startsWith('in local store'))).toBe(true);
  });

  it('after editing only the engine layer, only engine-installed is built and packaged, on the existing upgrade build', async () => {
    layers = mkdtempSync(path.join(tmp, 'layers-'));
    cpSync(frozen, layers, { recursive: true });
    appendFileSync(path.join(layers, 'debian12/engine-installed/configure-engine.sh'), 'echo tuned > /etc/ost-images-tuning\n');
    const before = Object.fromEntries(ls.order.map((l) => [l, store.current('debian12', l)!]));
    const rpmsBefore = Object.fromEntries(readdirSync(store.rpmsDir('debian12')).map((f) => [f, statSync(path.join(store.rpmsDir('debian12'), f)).mtimeMs]));
    const plan = JSON.parse(await ok(['plan', ...common, '--layers-dir', layers, '--json', '--offline'])) as { entries: { layer: string; action: string; changes: string[] }[] };
    expect(plan.entries.map((e) => `${e.layer}:${e.action}`)).toEqual(['base:reuse', 'upgrade:reuse', 'engine-installed:build', 'host-installed:reuse']);
    expect(plan.entries[2]!.changes).toEqual([expect.stringMatching(/^\.steps\[1\]\.run\.sha256: "[0-9a-f]{64}" -> "[0-9a-f]{64}"$/)]);
    const built = JSON.parse(await ok(['build', ...common, '--layers-dir', layers, '--json', '--offline'])) as { layers: { layer: string; action: string }[] };
    expect(built.layers.map((l) => `${l.layer}:${l.action}`)).toEqual(['base:reused', 'upgrade:reused', 'engine-installed:built', 'host-installed:reused']);
    const packaged = JSON.parse(await ok(['package', ...common, '--layers-dir', layers, '--json'])) as { layer: string; action: string; rpm: string }[];
    expect(packaged.map((p) => `${p.layer}:${p.action}`)).toEqual(['base:exists', 'upgrade:exists', 'engine-installed:packaged', 'host-installed:exists', 'engine-installed-flat:packaged']);
    for (const [f, mtime] of Object.entries(rpmsBefore)) expect(statSync(path.join(store.rpmsDir('debian12'), f)).mtimeMs).toBe(mtime);
    for (const l of ['base', 'upgrade', 'host-installed']) expect(store.current('debian12', l)).toEqual(before[l]);
    const engine = await readHeader(packaged[2]!.rpm);
    expect(engine.requires).toEqual([`ost-images-debian12-upgrade = ${before.upgrade!.version}-${before.upgrade!.release}`]);
  }, 10 * MIN);

  it('the nightly boots every top layer and publishes; on the test machine `dnf upgrade` then downloads only the new engine package', async () => {
    const engine = store.current('debian12', 'engine-installed')!;
    const reportDir = path.join(tmp, 'reports');
    const out = await ok(['nightly', ...common, '--layers-dir', layers, '--repo', repo, '--offline', '--report-dir', reportDir, '--json']);
    const report = JSON.parse(out) as NightlyReport;
    expect(report.ok).toBe(true);
    expect(report.boots.map((b) => `${b.layer}:${b.ok}`)).toEqual(['engine-installed:true', 'host-installed:true', 'engine-installed-flat:true']);
    expect(report.boots.every((b) => b.sshSeconds !== undefined)).toBe(true);
    const rpm = `ost-images-debian12-engine-installed-${engine.version}-${engine.release}.noarch.rpm`;
    expect(report.published!.added).toEqual([rpm, `ost-images-debian12-engine-installed-flat-${engine.version}-${engine.release}.noarch.rpm`]);
    expect(report.layers.map((l) => l.layer)).toEqual(ls.order);
    for (const l of report.layers) {
      expect(l.imageBytes).toBeGreaterThan(1024 ** 2);
      expect(l.rpmBytes).toBeGreaterThan(1024 ** 2);
      expect(l.key).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(readdirSync(reportDir).filter((f) => /^nightly-debian12-.*\.(json|txt)$/.test(f))).toHaveLength(2);
    server.mark();
    const cacheDir = mkdtempSync(path.join(tmp, 'dnf-cache-'));
    await dnf({ root, repoUrl: server.url, cacheDir, setopts: ['--setopt=installonly_limit=0'] }, ['upgrade']);
    expect((await server.settledRequests()).filter((r) => r.path.endsWith('.rpm')).map((r) => r.path)).toEqual([`/packages/${rpm}`]);
    const dir = path.join(root, 'usr/share/ost-images');
    const chain = JSON.parse(await ok(['verify', '--json', path.join(dir, engine.image)])) as { file: string }[];
    expect(chain.map((c) => path.basename(c.file))).toEqual([engine.image, store.current('debian12', 'upgrade')!.image, store.current('debian12', 'base')!.image]);
  }, 20 * MIN);

  it('after that upgrade the names point at the new build, the VM made on the old one still boots on it, and remove-old keeps it for that VM', async () => {
    const dir = path.join(root, 'usr/share/ost-images');
    const now = store.current('debian12', 'engine-installed')!;
    expect(readlinkSync(path.join(dir, 'debian12-engine-installed.qcow2'))).toBe(now.image);
    const before = JSON.parse(await ok(['vm', 'ls', '--vm-dir', vmDir, '--json'])) as { name: string; build: string; newerBuild?: string }[];
    const vm = before.find((v) => v.name === VM.engine)!;
    expect(vm.build).not.toBe(`${now.version}-${now.release}`);
    expect(vm.newerBuild).toBe(`${now.version}-${now.release}`);
    const yesterday = `ost-images-debian12-engine-installed-${vm.build}`;
    const dry = JSON.parse(await ok(['remove-old', '--keep', '1', '--root', root, '--vm-dir', vmDir, '--dry-run', '--json'])) as { removed: string[]; kept: { nvr: string; why: string }[] };
    expect(dry.removed).toEqual([]);
    expect(dry.kept.find((k) => k.nvr === yesterday)!.why).toMatch(/engine/);
    // For real, while the (stopped) VM exists: the run removes what the dry run said, which is not
    // the VM's build; that build and its image stay installed.
    const real = JSON.parse(await ok(['remove-old', '--keep', '1', '--root', root, '--vm-dir', vmDir, '--json'])) as { removed: string[]; dryRun: boolean; vms: { vm: string; nvr: string }[] };
    expect(real.dryRun).toBe(false);
    expect(real.removed).toEqual(dry.removed);
    expect(real.vms.filter((v) => v.vm === VM.engine).map((v) => v.nvr)).toContain(yesterday);
    expect((await run('rpm', ['--root', root, '-q', yesterday])).code).toBe(0);
    expect(existsSync(path.join(dir, `debian12-engine-installed-${vm.build}.qcow2`))).toBe(true);
    // The VM restarted on it runs yesterday's image, seen from inside the guest: today's build
    // carries the edit the test made to the engine layer (/etc/ost-images-tuning), yesterday's not.
    await ok(['vm', 'start', VM.engine, '--vm-dir', vmDir]);
    const probe = ['--', 'cat /etc/ost-images-role; if test -e /etc/ost-images-tuning; then echo tuned; else echo untuned; fi'];
    expect((await ok(['vm', 'ssh', VM.engine, '--vm-dir', vmDir, ...probe])).trim().split('\n')).toEqual(['engine', 'untuned']);
    // A VM on today's build for contrast: the same probe says tuned.
    await ok(['vm', 'create', VM.today, '--layer', 'engine-installed', '--images-dir', dir, '--vm-dir', vmDir, '--memory', '1024']);
    expect((await ok(['vm', 'ssh', VM.today, '--vm-dir', vmDir, ...probe])).trim().split('\n')).toEqual(['engine', 'tuned']);
    await ok(['vm', 'rm', VM.today, '--vm-dir', vmDir]);
    await ok(['vm', 'rm', VM.engine, '--vm-dir', vmDir]);
    expect(readdirSync(vmDir)).toEqual([]);
    // With the VM gone, the old build goes.
    const r = JSON.parse(await ok(['remove-old', '--keep', '1', '--root', root, '--vm-dir', vmDir, '--json'])) as { removed: string[] };
    expect(r.removed).toEqual([yesterday]);
    expect(readlinkSync(path.join(dir, 'debian12-engine-installed.qcow2'))).toBe(now.image);
    expect((await run('rpm', ['--root', root, '-Va'])).stdout).toBe('');
  }, 30 * MIN);

  // The nightly across CI runners, for real: the pipeline `ost-images ci gitlab` generates for
  // debian12 and debian13, run by gitlab-ci-local, one job per layer, each on its own store, with
  // this run's repository as production. debian12's layers are the ones the tests above published,
  // so (one build of each set per run) its jobs find them there and only boot them again, while
  // debian13 is built, staged, booted and promoted by the jobs.
  it('the generated pipeline for debian12 and debian13 run by gitlab-ci-local: debian12 is found in production, debian13 built in DAG order through staging, booted and promoted', async () => {
    scratch.init();
    for (const set of ['debian12', 'debian13']) cpSync(path.join(frozen, set), path.join(scratch.dir, 'layers', set), { recursive: true });
    writeFileSync(
      path.join(scratch.dir, 'ci.yaml'),
      [`cli: ${BIN}`, "setup: ''", `staging: {dir: ${staging}}`, `repo: {dir: ${repo}, url: "${server.url}"}`, 'keep: 3', ''].join('\n'),
    );
    await scratch.generate();
    scratch.git('add', 'layers', 'ci.yaml', '.gitlab-ci.yml');
    scratch.git('commit', '-q', '-m', 'debian12 and debian13, the site settings and the generated pipeline');
    const before = new Set(readSnapshot(repo, servedStamp(repo)!).packages.map(nvr));

    pipeline = await scratch.run([], { concurrency: 2, boundMs: 90 * MIN });
    expect(pipeline.code, pipeline.text).toBe(0);
    const run = readdirSync(path.join(staging, 'gate', 'debian13'))[0]!;

    // debian12: the run pinned the mirror's state when it started. Where that is the state the set
    // was built with, every layer is already in production and nothing is promoted. Where Debian
    // published in between, exactly the layers whose upstream moved, and the layers above them,
    // are rebuilt, staged and promoted: asserted as such, not skipped.
    const known = JSON.parse(readFileSync(path.join(storeDir, 'debian12', 'upstream.json'), 'utf8')) as Record<string, { sha256: string }>;
    const pinned = (JSON.parse(readFileSync(runUpstreamFile(staging, 'debian12', run), 'utf8')) as { digests: Record<string, string> }).digests;
    const movedUrls = new Set(Object.entries(pinned).filter(([u, d]) => known[u]?.sha256 !== d).map(([u]) => u));
    const rebuilt = new Set<string>();
    for (const l of ls.order) {
      const layer = ls.layers.get(l)!;
      if (layer.upstream.some((u) => movedUrls.has(u)) || (layer.parent !== undefined && rebuilt.has(layer.parent))) rebuilt.add(l);
    }
    process.stderr.write(`debian12 in the pipeline: upstream moved since the build: ${[...movedUrls].join(' ') || 'none'}; rebuilt: ${[...rebuilt].join(' ') || 'none'}\n`);
    for (const l of ls.order) {
      const out = jobOutput(pipeline, `debian12 ${l}`);
      if (rebuilt.has(l)) expect(out).toMatch(new RegExp(`debian12 ${l}: staged ost-images-debian12-${l}-12-\\d{14}( and \\S+-flat-\\S+)? \\(key [0-9a-f]{12}…\\): .*${l} built`));
      else expect(out).toMatch(new RegExp(`debian12 ${l}: key [0-9a-f]{12}… already in production as ost-images-debian12-${l}-12-\\d{14}.*; nothing to do`));
    }
    const flats = [...rebuilt].filter((l) => ls.set.flatten.includes(l)).length;
    if (rebuilt.size === 0) expect(jobOutput(pipeline, 'debian12 promote')).toContain('nothing new to promote');
    else expect(jobOutput(pipeline, 'debian12 promote')).toMatch(new RegExp(`debian12: promoting ${rebuilt.size + flats} build\\(s\\)`));

    // debian13: each job after the one it needs, each child on its parent fetched from staging.
    const span = (j: string) => jobSpan(pipeline, `debian13 ${j}`);
    const after = (child: string, parent: string) => expect(span(child).start, `${child} after ${parent}`).toBeGreaterThan(span(parent).end);
    after('upgrade', 'base');
    for (const top of ['engine-installed', 'host-installed']) {
      after(top, 'upgrade');
      after(`${top} boot`, top);
      after('promote', `${top} boot`);
    }
    after('engine-installed-flat boot', 'engine-installed');
    expect(jobOutput(pipeline, 'debian13 base')).toMatch(/debian13 base: staged ost-images-debian13-base-13-\d{14} \(key [0-9a-f]{12}…\): base built/);
    expect(jobOutput(pipeline, 'debian13 upgrade')).toMatch(/debian13 upgrade: staged \S+ \(key [0-9a-f]{12}…\): base fetched, upgrade built/);
    for (const top of ['engine-installed', 'host-installed']) {
      // engine-installed's job stages its flattened variant too: "staged A and A-flat (key …)".
      expect(jobOutput(pipeline, `debian13 ${top}`)).toMatch(new RegExp(`debian13 ${top}: staged \\S+( and \\S+-flat-\\S+)? \\(key [0-9a-f]{12}…\\): base fetched, upgrade fetched, ${top} built`));
    }
    for (const b of ['engine-installed', 'host-installed', 'engine-installed-flat']) {
      expect(jobOutput(pipeline, `debian13 ${b} boot`)).toMatch(new RegExp(`debian13 ${b}: passed: userspace after .* SSH login after`));
    }
    expect(jobOutput(pipeline, 'debian13 promote')).toMatch(/debian13: promoting 5 build\(s\)/);

    // Production now serves both sets: what it had, and debian13's whole chain.
    const served = readSnapshot(repo, servedStamp(repo)!).packages.map(nvr);
    for (const n of before) expect(served).toContain(n);
    const d13 = served.filter((n) => n.startsWith('ost-images-debian13-')).map((n) => n.replace(/-13-\d{14}$/, '')).sort();
    expect(d13).toEqual(['base', 'engine-installed', 'engine-installed-flat', 'host-installed', 'upgrade'].map((l) => `ost-images-debian13-${l}`));
  }, 90 * MIN);

  it('a plain `dnf install` from the promoted repository gets the whole chain of each set; the newly promoted one boots', async () => {
    const fresh = path.join(tmp, 'root-both');
    const cacheDir = mkdtempSync(path.join(tmp, 'dnf-cache-'));
    await dnf({ root: fresh, repoUrl: server.url, cacheDir, setopts: ['--setopt=installonly_limit=0'] }, ['install', 'ost-images-engine-installed', 'ost-images-debian13-engine-installed']);
    const installed = (await output('rpm', ['--root', fresh, '-qa', '--qf', '%{NAME}\n'])).split('\n').filter((n) => n.startsWith('ost-images-')).sort();
    expect(installed).toEqual([...['base', 'engine-installed', 'upgrade'].map((l) => `ost-images-debian12-${l}`), ...['base', 'engine-installed', 'upgrade'].map((l) => `ost-images-debian13-${l}`)]);
    const dir = path.join(fresh, 'usr/share/ost-images');
    for (const set of ['debian12', 'debian13']) {
      // The fixed name points at the build installed (the newest); the chain is read from there.
      const image = path.join(dir, readlinkSync(path.join(dir, `${set}-engine-installed.qcow2`)));
      const chain = JSON.parse(await ok(['verify', '--json', image])) as { file: string }[];
      expect(chain.map((c) => path.basename(c.file).replace(/-\d+-\d{14}\.qcow2$/, ''))).toEqual(['engine-installed', 'upgrade', 'base'].map((l) => `${set}-${l}`));
      // debian12's chain is the one the nightly above booted; debian13's, promoted by the pipeline
      // from staging, boots here from production's packages.
      if (set !== 'debian13') continue;
      const r = (JSON.parse(await ok(['test-boot', ...common, '--image', image, '--timeout', '600', '--json'])) as { booted: boolean; sshHostname?: string }[])[0]!;
      expect(r.booted).toBe(true);
      expect(r.sshHostname).toBe(set);
    }
  }, 30 * MIN);
});
