// The set's root key pair (builder/root-key.ts) with the real ssh-keygen: a key file the set names,
// a variable holding its path, or one generated once and kept; what planning does with each; what a
// fetched base brings along.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { adoptRootKey, planWithRootKey, publicKeyId, readRootKey, rootKeyDir } from '../../src/builder/root-key.js';
import type { RemoteRef } from '../../src/records/remote.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { UsageError } from '../../src/core/errors.js';
import { planBuild } from '../../src/plan/plan.js';
import { Store } from '../../src/store/store.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('rootkey');
afterAll(() => removeTree(tmp));

function set(extra = ''): LayerSet {
  return loadLayerSet(writeLayerSet(demoSet({ isDefault: true, extraSetKeys: extra })).layersDir, 'demo');
}

function keygen(file: string, passphrase = ''): string {
  mkdirSync(path.dirname(file), { recursive: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'ci-secret', '-f', file]);
  return readFileSync(`${file}.pub`, 'utf8');
}

const plan = (ls: LayerSet, store: Store) => (rootKey: string | undefined) => planBuild(ls, [], new Map(ls.order.map((l) => [l, store.current('demo', l)])), { rootKey });

describe("the set's root key", () => {
  it('generated once: a plan writes nothing, a build generates it, every later plan uses the same one', async () => {
    const ls = set();
    const store = new Store(path.join(tmp, 'store-gen'));
    const dry = await planWithRootKey(ls, store, undefined, plan(ls, store), { create: false });
    expect(dry.rootKey).toBeUndefined();
    expect(dry.plan.entries[0]!.manifest.rootKey).toBe('unknown');
    expect(existsSync(rootKeyDir(store, 'demo'))).toBe(false);

    const first = await planWithRootKey(ls, store, undefined, plan(ls, store), { create: true });
    expect(first.rootKey!.source).toBe('store');
    expect(first.plan.entries[0]!.manifest.rootKey).toBe(first.rootKey!.id);
    expect(statSync(first.rootKey!.private).mode & 0o777).toBe(0o600);
    // A stable comment: every base package ships these bytes.
    expect(first.rootKey!.public).toMatch(/^ssh-ed25519 \S+ root@demo \(ost-images\)$/);

    const again = await planWithRootKey(ls, store, undefined, plan(ls, store), { create: true });
    expect(again.rootKey!.id).toBe(first.rootKey!.id);
    expect(again.plan.entries[0]!.key).toBe(first.plan.entries[0]!.key);
  });

  it('a key file the set names (relative to the set folder): its identity keys the base; nothing is generated', async () => {
    const ls = set('ssh_key: {file: keys/root}');
    const pub = keygen(path.join(ls.set.dir, 'keys', 'root'));
    const store = new Store(path.join(tmp, 'store-file'));
    const r = await planWithRootKey(ls, store, undefined, plan(ls, store), { create: true });
    expect(r.rootKey).toMatchObject({ private: path.join(ls.set.dir, 'keys', 'root'), source: 'set file', id: publicKeyId(pub) });
    expect(r.plan.entries[0]!.manifest.rootKey).toBe(publicKeyId(pub));
    expect(existsSync(rootKeyDir(store, 'demo'))).toBe(false);
    // The comment is not part of the identity.
    expect(publicKeyId(pub.replace('ci-secret', 'another comment'))).toBe(publicKeyId(pub));
  });

  it('a variable holding the path (a CI file secret); unset or pointing nowhere is bad input', async () => {
    const ls = set('ssh_key: {env: OST_TEST_ROOT_KEY}');
    const store = new Store(path.join(tmp, 'store-env'));
    delete process.env.OST_TEST_ROOT_KEY;
    const unset = await readRootKey(ls, store).catch((e: unknown) => e);
    expect(unset).toBeInstanceOf(UsageError);
    expect((unset as Error).message).toBe(`${ls.set.file}: ssh_key.env: the environment variable 'OST_TEST_ROOT_KEY' is not set (it should hold the path of the set's root key)`);
    process.env.OST_TEST_ROOT_KEY = path.join(tmp, 'nowhere');
    expect(((await readRootKey(ls, store).catch((e: unknown) => e)) as Error).message).toBe(`${ls.set.file}: ssh_key: the key file '${path.join(tmp, 'nowhere')}' does not exist`);
    const pub = keygen(path.join(tmp, 'secret', 'id'));
    process.env.OST_TEST_ROOT_KEY = path.join(tmp, 'secret', 'id');
    expect((await readRootKey(ls, store))!.id).toBe(publicKeyId(pub));
    delete process.env.OST_TEST_ROOT_KEY;
  });

  it('an encrypted key is refused at once (nothing prompts for a passphrase)', async () => {
    const ls = set('ssh_key: {file: keys/locked}');
    keygen(path.join(ls.set.dir, 'keys', 'locked'), 'secret passphrase');
    const err = await readRootKey(ls, new Store(path.join(tmp, 'store-enc'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/ssh_key: '.*keys\/locked' is not a readable unencrypted private key/);
  });

  it('an empty store plans against the key of the newest base in a cache repository, and adopts that key only when it fetches that base', async () => {
    const ls = set();
    const store = new Store(path.join(tmp, 'store-remote'));
    const pub = keygen(path.join(tmp, 'remote', 'demo-base.id_ed25519'));
    const id = publicKeyId(pub);
    const ref = (release: string, rootKey: string): RemoteRef => ({ key: release, repo: 'http://r/', href: 'x', sha256: 'y', nvr: `b-${release}`, release, rootKey: { set: 'demo', id: rootKey } });
    const remote = new Map([['a', ref('20260101000000', '0'.repeat(64))], ['b', ref('20260102000000', id)]]);
    const r = await planWithRootKey(ls, store, remote, plan(ls, store), { create: false });
    expect(r.plan.entries[0]!.manifest.rootKey).toBe(id);
    // A key file that is not what the base declares is not adopted.
    adoptRootKey(ls, store, path.join(tmp, 'remote', 'demo-base.id_ed25519'), '1'.repeat(64));
    expect(existsSync(rootKeyDir(store, 'demo'))).toBe(false);
    adoptRootKey(ls, store, path.join(tmp, 'remote', 'demo-base.id_ed25519'), id);
    const kept = await readRootKey(ls, store);
    expect(kept).toMatchObject({ id, source: 'store' });
    expect(statSync(kept!.private).mode & 0o777).toBe(0o600);
  });

  it('a base whose plan needs a key but has none generates it under the same identity the build then records', async () => {
    const ls = set();
    const store = new Store(path.join(tmp, 'store-check'));
    const r = await planWithRootKey(ls, store, new Map(), plan(ls, store), { create: true });
    expect(r.plan.entries.map((e) => e.action)).toEqual(['build', 'build', 'build', 'build']);
    expect(r.plan.entries[0]!.manifest.rootKey).toBe(r.rootKey!.id);
  });
});
