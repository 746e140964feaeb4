// The repository as test machines see it while it changes, on real createrepo_c, dnf and an HTTP
// server: a client polling during publishes never fails a fetch; a publisher SIGKILLed before,
// during and after createrepo_c and in the middle of the switch leaves the served snapshot as it
// was (or, after the switch, the new one, complete), and the next publish succeeds; a snapshot with
// a missing parent is refused; rollback and chain-aware retention keep the repository installable.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pidsWhere } from '../../src/core/proc.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { installInto } from '../../src/consume/install.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { ConfigError } from '../../src/core/errors.js';
import { packageLayers } from '../../src/package/package.js';
import { publish } from '../../src/publish/publish.js';
import { readSnapshot, servedStamp } from '../../src/repository/snapshot.js';
import type { BuildRecord } from '../../src/records/build.js';
import { Store } from '../../src/store/store.js';
import { cli, startCli, stopStartedClis, waitFor } from '../helpers/cli.js';
import { serveDirectory, type Server } from '../helpers/http.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { fakeBuild, publishedDemoChain } from '../helpers/tiny.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('publish');
const storeDir = path.join(tmp, 'store');
const store = new Store(storeDir);
const repo = path.join(tmp, 'repo');
let layersDir: string;
let ls: LayerSet;
let recs: Record<string, BuildRecord>;
let server: Server;
let stamp = 20260201000000;

/** A new engine-installed build on the current upgrade, packaged; returns its RPM. */
async function newEngine(): Promise<string> {
  await fakeBuild(store, 'demo', 'engine-installed', String(stamp++), store.current('demo', 'upgrade')!, 0x60);
  return (await packageLayers(ls, ['engine-installed'], store))[0]!.rpm;
}

const publishCli = (env: Record<string, string> = {}) => startCli(['publish', '--set', 'demo', '--layers-dir', layersDir, '--store', storeDir, '--repo', repo], env);

/** What dnf would see: the served snapshot, complete, and nothing a dead publisher left. */
function assertConsistent(): void {
  const stampNow = servedStamp(repo)!;
  const rec = readSnapshot(repo, stampNow);
  for (const p of rec.packages) expect(existsSync(path.join(repo, 'packages', p.file)), p.file).toBe(true);
  const repomd = readFileSync(path.join(repo, 'repodata', 'repomd.xml'), 'utf8');
  for (const m of repomd.matchAll(/<location href="([^"]+)"/g)) expect(existsSync(path.join(repo, m[1]!)), m[1]).toBe(true);
}

function leftovers(): string[] {
  return [
    ...readdirSync(repo).filter((f) => f.startsWith('.incoming-') || /^\.(current|repodata|index\.html)\.tmp-/.test(f) || f === '.lock'),
    ...readdirSync(path.join(repo, '.snapshots')).filter((f) => f.includes('.partial-')),
    ...readdirSync(path.join(repo, 'packages')).filter((f) => f.startsWith('.')),
  ];
}

/** A process's state letter (R, S, T stopped, Z zombie, ...), or 'gone'. */
function processState(pid: number): string {
  try {
    return /\) (\S) /.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))![1]!;
  } catch {
    return 'gone';
  }
}

function createrepoPids(): number[] {
  return pidsWhere((argv) => argv[0]!.startsWith('createrepo_c') && argv.join('\0').includes(repo));
}

beforeAll(async () => {
  layersDir = writeLayerSet(demoSet({ isDefault: true })).layersDir;
  ls = loadLayerSet(layersDir, 'demo');
  recs = (await publishedDemoChain(ls, store, repo)).recs;
  server = await serveDirectory(repo);
});

afterAll(async () => {
  clients.forEach((c) => c.kill());
  await stopStartedClis();
  server?.stop();
  removeTree(tmp);
}, 300_000);

/**
 * The polling client (test/helpers/poll-repo.mjs) and its protocol: lines it prints, commands on
 * stdin. Waiting is for its lines, never for time: a wait ends at the line, or fails at once on an
 * `error` line or the client's exit. Only the test's own timeout bounds a hang.
 */
function startClient(url: string) {
  const client = makeClient(url);
  clients.push(client);
  return client;
}

/** Every client started, so that afterAll stops them even after a failed or timed-out test. */
const clients: { kill: () => void }[] = [];

function makeClient(url: string) {
  const child = spawn(process.execPath, [path.resolve('test/helpers/poll-repo.mjs'), url], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  let exited = false;
  const waiters = new Set<() => void>();
  const wake = () => waiters.forEach((w) => w());
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(l);
    wake();
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<void>((resolve) => child.on('close', () => {
    exited = true;
    wake();
    resolve();
  }));
  /** Resolves with the first line (from `from` on) for which `match` holds. */
  const waitLine = (match: (line: string) => boolean, from = 0) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const hit = lines.slice(from).find(match);
        const error = lines.find((l) => l.startsWith('error '));
        if (hit) resolve(hit);
        else if (error) reject(new Error(`the client failed a fetch: ${error}`));
        else if (exited) reject(new Error(`the client exited: ${stderr}`));
        else return;
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return {
    send: (cmd: string) => child.stdin!.write(`${cmd}\n`),
    /** Until the free loop has completed a round on the snapshot whose repomd.xml has this digest. */
    seen: (id: string) => waitLine((l) => l === `snapshot ${id}`),
    waitLine,
    mark: () => lines.length,
    async stop() {
      child.stdin!.end('stop\n');
      const line = await waitLine((l) => l.startsWith('result '));
      await closed;
      return JSON.parse(line.slice('result '.length)) as { rounds: number; snapshots: string[]; held: number; errors: string[] };
    },
    kill: () => {
      if (!exited) child.kill('SIGKILL');
    },
  };
}

/** The identity of the served snapshot as a client sees it: the digest of repomd.xml. */
const servedRepomd = () => createHash('sha256').update(readFileSync(path.join(repo, 'repodata', 'repomd.xml'))).digest('hex');

describe('publishing while clients read', () => {
  // Two readers, one client process. The free loop keeps reading while every publish runs (how
  // many rounds overlap a publish depends on the machine, so that is not counted). The held reader
  // makes the interleavings that matter certain: it reads repomd.xml (and, every other publish,
  // the primary) of the served snapshot, the test publishes, and only then does it fetch the rest
  // of the old snapshot through the switched link, with retention having run on every other one.
  // Each publish starts once the free loop has completed a round on the previous snapshot, so
  // it sees every snapshot, and exactly those. (It used to count snapshots seen during a fixed
  // set of publishes as fast as they went, and failed on a busy machine.)
  it('a client reading during publishes (with retention) never fails a fetch nor sees a half repository, even mid-read across a switch', async () => {
    const client = startClient(server.url);
    try {
      const ids = [servedRepomd()];
      await client.seen(ids[0]!);
      const publishes = 8;
      for (let i = 0; i < publishes; i++) {
        // Both stages meet both kinds of publish: with retention (--keep 2) and without.
        const stage = i % 4 < 2 ? 'repomd' : 'primary';
        const from = client.mark();
        client.send(`hold ${stage}`);
        expect(await client.waitLine((l) => l.startsWith('held '), from)).toBe(`held ${stage} ${ids[i]}`);
        const r = await publish(repo, [await newEngine()], { keep: i % 2 ? 2 : undefined });
        // Incremental: createrepo_c reads the one new package and reuses the metadata of the rest.
        expect(r.packagesRead).toBe(1);
        expect(r.packages).toBeGreaterThan(4);
        ids.push(servedRepomd());
        client.send('go');
        expect(await client.waitLine((l) => l.startsWith('resumed '), from)).toBe(`resumed ${ids[i]}`);
        await client.seen(ids[i + 1]!);
      }
      const r = await client.stop();
      expect(r.errors).toEqual([]);
      // Every snapshot served, each seen once, in order; and every held read completed.
      expect(r.snapshots).toEqual(ids);
      expect(new Set(ids).size).toBe(publishes + 1);
      expect(r.held).toBe(publishes);
      assertConsistent();
    } finally {
      client.kill();
    }
  }, 600_000);
});

describe('a publisher killed with SIGKILL', () => {
  // OST_IMAGES_FAULT makes the publisher SIGKILL itself at that exact point.
  const points = [
    { point: 'publish:before-createrepo', switched: false },
    { point: 'publish:after-createrepo', switched: false },
    { point: 'publish:switch', switched: false },
    { point: 'publish:after-switch', switched: true },
  ];
  for (const { point, switched } of points) {
    it(`at ${point} leaves ${switched ? 'the new snapshot, complete,' : 'the old snapshot'} served; the next publish succeeds`, async () => {
      const before = servedStamp(repo);
      const rpm = await newEngine();
      const r = await publishCli({ OST_IMAGES_FAULT: point }).done;
      expect(r.signal).toBe('SIGKILL');
      if (switched) expect(servedStamp(repo)).not.toBe(before);
      else expect(servedStamp(repo)).toBe(before);
      assertConsistent();
      const again = await cli(['publish', '--set', 'demo', '--layers-dir', layersDir, '--store', storeDir, '--repo', repo, '--json']);
      expect(again.code, again.stderr).toBe(0);
      expect(leftovers()).toEqual([]);
      expect(readSnapshot(repo, servedStamp(repo)!).packages.map((p) => p.file)).toContain(path.basename(rpm));
      assertConsistent();
    });
  }

  it('while createrepo_c runs: the orphaned createrepo_c is stopped and its partial snapshot removed by the next publish', async () => {
    const before = servedStamp(repo);
    const rpm = await newEngine();
    // The publisher SIGKILLs itself with createrepo_c started and SIGSTOPped: an orphan mid-run
    // for certain, however fast createrepo_c or busy the machine. (Catching a running
    // createrepo_c from here and killing the publisher then was a race the test could lose.)
    const r = await publishCli({ OST_IMAGES_FAULT: 'publish:during-createrepo' }).done;
    expect(r.signal).toBe('SIGKILL');
    const orphans = createrepoPids();
    expect(orphans).toHaveLength(1);
    // SIGSTOP takes effect when the process is next scheduled (it runs no code before): on a busy
    // machine it may still show R for a while. T is where it stays, hence the poll; the deadline
    // only bounds a hang.
    await waitFor(() => processState(orphans[0]!) === 'T', 300_000, 'the orphaned createrepo_c to stop');
    expect(servedStamp(repo)).toBe(before);
    assertConsistent();
    const again = await cli(['publish', '--set', 'demo', '--layers-dir', layersDir, '--store', storeDir, '--repo', repo]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(`stopping process(es) ${orphans[0]} left writing into a dead publisher's files`);
    // Gone, or a zombie waiting for init to reap it.
    for (const pid of orphans) expect(['gone', 'Z']).toContain(processState(pid));
    expect(leftovers()).toEqual([]);
    expect(readSnapshot(repo, servedStamp(repo)!).packages.map((p) => p.file)).toContain(path.basename(rpm));
    assertConsistent();
  });

  it('dnf installs from the repository afterwards', async () => {
    const r = await installInto(path.join(tmp, 'root-after-kills'), server.url, ['ost-images-engine-installed']);
    expect(r.installed.filter((n) => n.includes('engine-installed'))).toEqual([`ost-images-demo-engine-installed-12-${store.current('demo', 'engine-installed')!.release}`]);
  });
});

describe('the closure check', () => {
  it('refuses a snapshot in which a package requires a parent build that is not there, naming it, and changes nothing', async () => {
    // An upgrade build that is never published, and an engine build on it.
    const other = new Store(path.join(tmp, 'store-orphan'));
    const base = await fakeBuild(other, 'demo', 'base', recs.base!.release);
    const upgrade = await fakeBuild(other, 'demo', 'upgrade', '20260301000000', base, 0x23);
    await fakeBuild(other, 'demo', 'engine-installed', '20260301000100', upgrade, 0x34);
    const [pkg] = await packageLayers(ls, ['engine-installed'], other);
    const link = readlinkSync(path.join(repo, 'current'));
    const pool = readdirSync(path.join(repo, 'packages')).sort();
    const err = await publish(repo, [pkg!.rpm]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(`${pkg!.rpm}: Requires: 'ost-images-demo-upgrade = 12-20260301000000' of ost-images-demo-engine-installed-12-20260301000100 is provided by no package of the new snapshot`);
    expect(readlinkSync(path.join(repo, 'current'))).toBe(link);
    expect(readdirSync(path.join(repo, 'packages')).sort()).toEqual(pool);
  });
});

describe('rollback and retention', () => {
  it('publish --rollback serves the snapshot the current one replaced, with its packages', async () => {
    const engineBefore = store.current('demo', 'engine-installed')!;
    await publish(repo, [await newEngine()]);
    const served = servedStamp(repo)!;
    const previous = readSnapshot(repo, served).previous!;
    // --rollback does exactly one thing; a --dry-run beside it must not roll back for real.
    const clash = await cli(['publish', '--rollback', '--dry-run', '--repo', repo]);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain('--rollback does not go with --dry-run');
    expect(servedStamp(repo)).toBe(served);
    const r = await cli(['publish', '--rollback', '--repo', repo, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ repo, from: served, to: previous });
    expect(servedStamp(repo)).toBe(previous);
    assertConsistent();
    const inst = await installInto(path.join(tmp, 'root-rollback'), server.url, ['ost-images-engine-installed']);
    expect(inst.installed).toContain(`ost-images-demo-engine-installed-12-${engineBefore.release}`);
  });

  it('prune --keep 1 keeps the newest top-level builds and their whole chains; --dry-run changes nothing', async () => {
    // A base change: a second chain, so the old upgrade and base builds are still required by
    // the old engine and host builds until those go.
    const base2 = await fakeBuild(store, 'demo', 'base', '20260401000000', undefined, 0x12);
    const up2 = await fakeBuild(store, 'demo', 'upgrade', '20260401000100', base2, 0x24);
    await fakeBuild(store, 'demo', 'engine-installed', '20260401000200', up2, 0x35);
    await fakeBuild(store, 'demo', 'host-installed', '20260401000300', up2, 0x45);
    await publish(repo, (await packageLayers(ls, ls.order, store)).map((p) => p.rpm));
    const link = readlinkSync(path.join(repo, 'current'));
    const dry = await cli(['prune', '--repo', repo, '--keep', '2', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(dry.stdout) as { removed: string[]; dryRun: boolean };
    expect(plan.dryRun).toBe(true);
    expect(readlinkSync(path.join(repo, 'current'))).toBe(link);
    // keep 2: the new chain and the newest old-chain engine and host builds, with the old upgrade and base.
    const kept = (await cli(['prune', '--repo', repo, '--keep', '2', '--json'])).stdout;
    const r = JSON.parse(kept) as { removed: string[]; packages: number };
    expect(r.removed.sort()).toEqual(plan.removed.sort());
    const names = readSnapshot(repo, servedStamp(repo)!).packages.map((p) => `${p.name.replace('ost-images-demo-', '')}-${p.release}`).sort();
    const engines = names.filter((n) => n.startsWith('engine-installed'));
    expect(engines).toEqual([`engine-installed-${store.current('demo', 'engine-installed')!.release}`, expect.stringMatching(/^engine-installed-2026/)].sort());
    expect(names).toContain(`upgrade-${recs.upgrade!.release}`);
    expect(names).toContain(`base-${recs.base!.release}`);
    assertConsistent();
    const one = JSON.parse((await cli(['prune', '--repo', repo, '--keep', '1', '--json'])).stdout) as { packages: number };
    expect(one.packages).toBe(4);
    expect(readSnapshot(repo, servedStamp(repo)!).packages.map((p) => p.release).sort()).toEqual(['20260401000000', '20260401000100', '20260401000200', '20260401000300']);
    const inst = await installInto(path.join(tmp, 'root-pruned'), server.url, ['ost-images-engine-installed', 'ost-images-host-installed']);
    expect(inst.installed.length).toBe(4);
  });

  it('refuses a bad --keep with exit code 2', async () => {
    const r = await cli(['prune', '--repo', repo, '--keep', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--keep: '0' is not a positive whole number");
  });
});

describe('retiring snapshots', () => {
  it('keeps the served snapshot and the one it replaced, and counts the grace period from retirement', async () => {
    process.env.OST_IMAGES_SNAPSHOT_GRACE = '0';
    try {
      await publish(repo, [await newEngine()]);
      await publish(repo, [await newEngine()]);
      const served = servedStamp(repo)!;
      const kept = readdirSync(path.join(repo, '.snapshots')).sort();
      expect(kept).toEqual([readSnapshot(repo, served).previous, served].sort());
      // The pool holds exactly what those two list.
      const listed = new Set(kept.flatMap((s) => readSnapshot(repo, s).packages.map((p) => p.file)));
      expect(readdirSync(path.join(repo, 'packages')).sort()).toEqual([...listed].sort());
    } finally {
      delete process.env.OST_IMAGES_SNAPSHOT_GRACE;
    }
    // The default grace (600 s), on a clock the test sets (publish reads Date; nothing else is
    // faked): no machine's speed decides what is kept. A snapshot made long ago and retired by the
    // next publish stays while that retirement is younger than the grace, and goes after.
    const engines = [await newEngine(), await newEngine(), await newEngine(), await newEngine()];
    // Two hours ago: every time set below is in the past, so the publishes after this test (on the
    // real clock) come later, as they would.
    const t0 = Date.now() - 2 * 3600_000;
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(t0);
      await publish(repo, [engines[0]!]);
      const old = servedStamp(repo)!;
      // An hour later: `old` is retired now (created an hour ago, retired this instant).
      vi.setSystemTime(t0 + 3600_000);
      await publish(repo, [engines[1]!]);
      vi.setSystemTime(t0 + 3600_000 + 1000);
      await publish(repo, [engines[2]!]);
      // Retired 1 s ago, made an hour ago: within the grace, counted from retirement.
      expect(readdirSync(path.join(repo, '.snapshots'))).toContain(old);
      vi.setSystemTime(t0 + 3600_000 + 601_000);
      await publish(repo, [engines[3]!]);
      // Retired 601 s ago: past the grace.
      expect(readdirSync(path.join(repo, '.snapshots'))).not.toContain(old);
    } finally {
      vi.useRealTimers();
    }
  });

  it('gives a snapshot served by an older ost-images (no index) an index, so rollback reaches it', async () => {
    const served = servedStamp(repo)!;
    rmSync(path.join(repo, '.snapshots', served, 'snapshot.json'));
    await publish(repo, [await newEngine()]);
    expect(readSnapshot(repo, served).packages.length).toBeGreaterThan(4);
    expect(readSnapshot(repo, servedStamp(repo)!).previous).toBe(served);
    const r = await cli(['publish', '--rollback', '--repo', repo]);
    expect(r.code, r.stderr).toBe(0);
    expect(servedStamp(repo)).toBe(served);
    assertConsistent();
  });
});

describe('the .repo file', () => {
  it('is written beside the repository with the URL given, and kept on later publishes', async () => {
    await publish(repo, [await newEngine()], { url: 'https://ci.example.org/ost/' });
    await publish(repo, [await newEngine()]);
    const text = readFileSync(path.join(repo, 'ost-images.repo'), 'utf8');
    expect(text).toContain('baseurl=https://ci.example.org/ost/\n');
    expect(text).toContain('gpgcheck=0\n');
  });
});
