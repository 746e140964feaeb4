// Upstream digests fetched over a real HTTP server on 127.0.0.1 with got, remembered in the
// store, reused with --offline; a failure names the URL and the way out.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLayerSet } from '../../src/definitions/load.js';
import { StepError } from '../../src/core/errors.js';
import { computeKeys } from '../../src/plan/keys.js';
import { resolveUpstream } from '../../src/plan/upstream.js';
import { serveDirectory } from '../helpers/http.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('upstream');
const www = path.join(tmp, 'www');
const store = path.join(tmp, 'store');
let server: Awaited<ReturnType<typeof serveDirectory>>;
let url: string;

function set(upstreamUrl: string) {
  return loadLayerSet(
    writeLayerSet({ ...demoSet({ isDefault: true }), 'upgrade/layer.yaml': `parent: base\nupstream: [${upstreamUrl}]\nsteps:\n  - upgrade: true\n` }).layersDir,
    'demo',
  );
}

beforeAll(async () => {
  (await import('node:fs')).mkdirSync(www, { recursive: true });
  writeFileSync(path.join(www, 'InRelease'), 'Origin: Test\nDate: Sat, 21 Nov 2026 06:00:00 UTC\n');
  server = await serveDirectory(www);
  url = `${server.url}InRelease`;
});
afterAll(() => {
  server?.stop();
  removeTree(tmp);
});

describe('upstream digests', () => {
  it('rebuild the declaring layer and those above exactly when the upstream changes', async () => {
    const ls = set(url);
    const k1 = computeKeys(ls, await resolveUpstream(ls, store, {}));
    const k2 = computeKeys(ls, await resolveUpstream(ls, store, {}));
    expect(k2.get('upgrade')!.key).toBe(k1.get('upgrade')!.key);
    writeFileSync(path.join(www, 'InRelease'), 'Origin: Test\nDate: Sun, 22 Nov 2026 06:00:00 UTC\n');
    const k3 = computeKeys(ls, await resolveUpstream(ls, store, {}));
    expect(['base', 'upgrade', 'engine-installed', 'host-installed'].filter((l) => k3.get(l)!.key !== k1.get(l)!.key)).toEqual(['upgrade', 'engine-installed', 'host-installed']);
    // The metadata's own date is the time of the layers that see it: SOURCE_DATE_EPOCH.
    expect(k1.get('upgrade')!.manifest.sourceDateEpoch).toBe(Date.UTC(2026, 10, 21, 6) / 1000);
    expect(k3.get('engine-installed')!.manifest.sourceDateEpoch).toBe(Date.UTC(2026, 10, 22, 6) / 1000);
  });

  it('--offline uses the last digests fetched, without a request', async () => {
    const ls = set(url);
    const online = await resolveUpstream(ls, store, {});
    server.stop();
    expect(await resolveUpstream(ls, store, { offline: true })).toEqual(online);
    expect(online.dates[url]).toBe(Date.UTC(2026, 10, 22, 6) / 1000);
    server = await serveDirectory(www);
  });

  it('--offline with no digest known yet, or an unreachable upstream: a clear error', async () => {
    const ls = set('http://127.0.0.1:9/never/InRelease');
    await expect(resolveUpstream(ls, store, { offline: true })).rejects.toThrow('--offline, but no digest is known yet for http://127.0.0.1:9/never/InRelease');
    const err = await resolveUpstream(ls, store, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepError);
    expect((err as Error).message).toMatch(/^cannot fetch http:\/\/127\.0\.0\.1:9\/never\/InRelease: .*; use --offline/);
  });
});
