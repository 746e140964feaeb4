// Retention by use on real packages, a real HTTP server's access log and real dnf: a test machine
// installs an OLD engine build; `ost-images usage` reads the server's log; `prune --keep 1
// --keep-used-within 7` then keeps that build and the chain under it (saying which rule keeps
// what) while removing the old builds nobody downloaded, and dnf still installs the kept old build
// from the pruned repository.
import { createWriteStream, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installInto } from '../../src/consume/install.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { packageLayers } from '../../src/package/package.js';
import { publish } from '../../src/publish/publish.js';
import type { UsagePruneResult } from '../../src/publish/prune-by-use.js';
import type { UsageResult } from '../../src/usage/usage.js';
import { readUsage } from '../../src/repository/usage.js';
import type { BuildRecord } from '../../src/records/build.js';
import { Store } from '../../src/store/store.js';
import { cli, startCli, stopStartedClis } from '../helpers/cli.js';
import { serveDirectory, type Server } from '../helpers/http.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { fakeBuild, publishedDemoChain } from '../helpers/tiny.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('usage');
const store = new Store(path.join(tmp, 'store'));
// Served from its parent directory: the repository's URL has a prefix, /repo/, as behind a real
// web server (e.g. https://ci.example.org/ost-images/).
const served = path.join(tmp, 'www');
const repo = path.join(served, 'repo');
const accessLog = path.join(tmp, 'access.log');
let ls: LayerSet;
let server: Server;
let serverLog = '';
let repoUrl: string;
let chain1: Record<string, BuildRecord>;
let up2: BuildRecord;
let eng2: BuildRecord;
let host2: BuildRecord;
let eng3: BuildRecord;

const nvr = (r: BuildRecord) => `ost-images-demo-${r.layer}-${r.version}-${r.release}`;
const file = (r: BuildRecord) => `${nvr(r)}.noarch.rpm`;

async function publishBuilds(recs: BuildRecord[]): Promise<void> {
  const rpms = (await packageLayers(ls, ls.order, store)).map((p) => p.rpm).filter((f) => recs.some((r) => f.endsWith(file(r))));
  await publish(repo, rpms);
}

beforeAll(async () => {
  ls = loadLayerSet(writeLayerSet(demoSet({ isDefault: true })).layersDir, 'demo');
  // Night 1: the whole chain. Night 2: upgrade changed, its chain rebuilt. Night 3: engine only.
  chain1 = (await publishedDemoChain(ls, store, repo)).recs;
  up2 = await fakeBuild(store, 'demo', 'upgrade', '20260102000100', chain1.base, 0x23);
  eng2 = await fakeBuild(store, 'demo', 'engine-installed', '20260102000200', up2, 0x34);
  host2 = await fakeBuild(store, 'demo', 'host-installed', '20260102000300', up2, 0x45);
  await publishBuilds([up2, eng2, host2]);
  eng3 = await fakeBuild(store, 'demo', 'engine-installed', '20260103000200', up2, 0x56);
  await publishBuilds([eng3]);
  server = await serveDirectory(served);
  // The server's access log as it writes it (Python http.server writes it to stderr).
  server.child.stderr!.on('data', (d: Buffer) => (serverLog += d.toString()));
  repoUrl = `${server.url}repo/`;
});

afterAll(async () => {
  await stopStartedClis();
  server?.stop();
  removeTree(tmp);
});

describe('retention by use', () => {
  it('a test machine installs an old engine build over HTTP: only its package crosses the wire (its parents come from a local copy)', async () => {
    const machine = path.join(tmp, 'machine');
    // The chain under it is already there (installed from the repository directory, not logged).
    await installInto(machine, repo, [nvr(chain1.upgrade!)]);
    server.mark();
    const r = await installInto(machine, repoUrl, [nvr(chain1.engine!)]);
    expect(r.installed).toEqual([chain1.base!, chain1.engine!, chain1.upgrade!].map(nvr));
    const rpms = (await server.settledRequests()).filter((q) => q.path.endsWith('.rpm'));
    expect(rpms).toEqual([{ path: `/repo/packages/${file(chain1.engine!)}`, status: 200 }]);
    // settledRequests has seen the sentinel's line: every line before it is in serverLog too.
    writeFileSync(accessLog, serverLog);
  });

  it('ost-images usage attributes the download to the build; reading the log again counts nothing', async () => {
    const r = await cli(['usage', '--repo', repo, '--access-log', accessLog, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const u = JSON.parse(r.stdout) as UsageResult;
    const lines = serverLog.trimEnd().split('\n').length;
    expect(u.logs[0]).toMatchObject({ lines, alreadyRead: 0, downloads: 1, partial: 0, malformed: 0 });
    // Metadata, the helper's sentinel 404s and Python's "code 404, message" lines: ignored, counted.
    expect(u.logs[0]!.ignored).toBe(lines - 1);
    expect(u.logs[0]!.ignoredBy['not a package']).toBeGreaterThan(0);
    expect(u.builds.map((b) => [b.nvr, b.downloads, b.newDownloads])).toEqual([[nvr(chain1.engine!), 1, 1]]);
    // The server's zone-less local time, read in the same zone: exactly the time on the line of
    // that download (Python's http.server: [27/Nov/2026 10:02:11], local time).
    const line = serverLog.split('\n').find((l) => l.includes(`"GET /repo/packages/${file(chain1.engine!)} HTTP/1.1" 200`))!;
    const [, d, mon, y, h, mi, s] = /\[([0-9]{2})\/([A-Z][a-z]{2})\/([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2})\]/.exec(line)!;
    const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].indexOf(mon!);
    const local = new Date(Number(y), month, Number(d), Number(h), Number(mi), Number(s));
    expect(u.builds[0]!.lastDownloaded).toBe(local.toISOString().replace(/\.000Z$/, 'Z'));
    expect([...readUsage(repo).keys()]).toEqual([nvr(chain1.engine!)]);
    // The served status page says so at once, not only after the next publish.
    expect(readFileSync(path.join(repo, 'index.html'), 'utf8')).toContain('(1 download(s))');

    const again = await cli(['usage', '--repo', repo, '--access-log', accessLog, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as UsageResult).logs[0]).toMatchObject({ lines, alreadyRead: lines, downloads: 0 });
    expect(readUsage(repo).get(nvr(chain1.engine!))!.downloads).toBe(1);
  });

  it('prune --keep 1 --keep-used-within 7 --dry-run --json says which rule keeps what', async () => {
    const r = await cli(['prune', '--repo', repo, '--keep', '1', '--keep-used-within', '7', '--dry-run', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout) as UsagePruneResult;
    const rules = Object.fromEntries(p.kept.map((k) => [k.nvr, k.rules.map((x) => `${x.rule}: ${x.reason}`)]));
    expect(rules).toEqual({
      [nvr(chain1.base!)]: [expect.stringMatching(/^required: required by ost-images-demo-upgrade-12-2026010[12]000100$/)],
      [nvr(chain1.upgrade!)]: [`required: required by ${nvr(chain1.engine!)}`],
      [nvr(chain1.engine!)]: [expect.stringMatching(/^used: downloaded 1 time, last 20[0-9-]+T[0-9:]+Z \(today, within 7\)$/)],
      [nvr(up2)]: [expect.stringMatching(/^required: required by ost-images-demo-(engine|host)-installed-12-2026010[23]000[23]00$/)],
      [nvr(host2)]: ['newest: one of the 1 newest builds of ost-images-demo-host-installed'],
      [nvr(eng3)]: ['newest: one of the 1 newest builds of ost-images-demo-engine-installed'],
    });
    expect(p.removed.sort()).toEqual([file(chain1.host!), file(eng2)].sort());
    expect(p.removedBuilds.map((b) => b.nvr).sort()).toEqual([nvr(chain1.host!), nvr(eng2)].sort());
    expect(p.dryRun).toBe(true);
    // Count-based retention would have dropped the used engine build and its upgrade.
    const plain = await cli(['prune', '--repo', repo, '--keep', '1', '--dry-run', '--json']);
    expect((JSON.parse(plain.stdout) as { removed: string[] }).removed.sort()).toEqual([chain1.engine!, chain1.upgrade!, chain1.host!, eng2].map(file).sort());
  });

  it('the real prune keeps them and removes the unused old builds; dnf still installs the kept old build from the pruned repository', async () => {
    const r = await cli(['prune', '--repo', repo, '--keep', '1', '--keep-used-within', '7']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/keep +ost-images-demo-engine-installed-12-20260101000200: \[used\] downloaded 1 time/);
    expect(r.stderr).toMatch(new RegExp(`did remove +${nvr(eng2)}: no download recorded`));
    // The served snapshot's packages: what dnf sees (retired snapshots' files go with their grace).
    const served = await cli(['prune', '--repo', repo, '--keep', '1', '--keep-used-within', '7', '--dry-run', '--json']);
    const kept = (JSON.parse(served.stdout) as UsagePruneResult).kept.map((k) => k.file).sort();
    expect(kept).toEqual([chain1.base!, chain1.upgrade!, chain1.engine!, up2, host2, eng3].map(file).sort());
    expect(readdirSync(path.join(repo, 'packages')).filter((f) => f.endsWith('.rpm'))).toEqual(expect.arrayContaining(kept));

    const fresh = await installInto(path.join(tmp, 'machine2'), repoUrl, [nvr(chain1.engine!)]);
    expect(fresh.installed).toEqual([chain1.base!, chain1.engine!, chain1.upgrade!].map(nvr));
    // The removed ones are gone from what dnf sees.
    await expect(installInto(path.join(tmp, 'machine3'), repoUrl, [nvr(eng2)])).rejects.toThrow();
  });

  it('a gzip bomb (1 GiB of zeros) and a 50 MB line are read to their end, each skipped as one malformed line naming its length; the lines around them count', async () => {
    const bomb = path.join(tmp, 'access.log.3.gz');
    // 1 GiB of zeros, as a rotated log zero-filled by a crash and compressed (about 1 MB).
    await pipeline(
      (async function* () {
        const zeros = Buffer.alloc(1 << 20);
        for (let i = 0; i < 1024; i++) yield zeros;
      })(),
      createGzip({ level: 1 }),
      createWriteStream(bomb),
    );
    const long = path.join(tmp, 'access.log.2');
    writeFileSync(long, `${serverLog.split('\n')[0]}\n${'x'.repeat(50 * 2 ** 20)}\n${serverLog}`);
    const before = readFileSync(path.join(repo, 'usage.json'), 'utf8');
    const r = await cli(['usage', '--repo', repo, '--access-log', bomb, '--access-log', long, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [b, l] = (JSON.parse(r.stdout) as UsageResult).logs;
    expect(b).toMatchObject({ lines: 1, malformed: 1, downloads: 0, malformedExamples: [`${bomb}:1: a line of ${2 ** 30} bytes, longer than any server writes (at most 65536 read): skipped`] });
    // The long log begins with the lines already read from the server's log: only what follows its
    // first line is new (a log is known by its first lines, and this one's differ).
    expect(l).toMatchObject({ malformed: 1, malformedExamples: [`${long}:2: a line of ${50 * 2 ** 20} bytes, longer than any server writes (at most 65536 read): skipped`] });
    expect(l!.lines).toBe(serverLog.trimEnd().split('\n').length + 2);
    expect(readFileSync(path.join(repo, 'usage.json'), 'utf8')).not.toBe(before);
  }, 600_000);

  it('SIGTERM inside a log parse that only an interrupt can end: exit 130, the lock released, usage.json unchanged', async () => {
    const usageJson = path.join(repo, 'usage.json');
    const before = readFileSync(usageJson);
    // The hook makes the log go on with zeros after its end: the parse is certainly running when
    // the signal comes, and only the interrupt (or the reader's size bound, exit 2) ends it.
    const u = startCli(['usage', '--repo', repo, '--access-log', accessLog], { OST_IMAGES_FAULT: 'usage:endless-log' });
    await u.until(/test hook: OST_IMAGES_FAULT=usage:endless-log: reached/);
    u.child.kill('SIGTERM');
    const r = await u.done;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/SIGTERM received: stopping and cleaning up/);
    expect(r.stderr).toMatch(/interrupted by SIGTERM/);
    expect(existsSync(path.join(repo, '.lock'))).toBe(false);
    expect(readFileSync(usageJson).equals(before)).toBe(true);
  }, 600_000);

  it('bad input: exit 2, nothing written', async () => {
    const missing = await cli(['usage', '--repo', repo, '--access-log', path.join(tmp, 'nope.log')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--access-log: '.*nope\.log': does not exist .*\(ENOENT\)/);
    const days = await cli(['prune', '--repo', repo, '--keep', '1', '--keep-used-within', 'week']);
    expect(days.code).toBe(2);
    expect(days.stderr).toMatch(/--keep-used-within: 'week' is not a positive number of days/);
  });
});
