// Signed repositories on the real rpmsign, gpg (a throwaway key), createrepo_c and dnf over HTTP:
// a test machine configured from the published .repo file (gpgcheck=1, repo_gpgcheck=1) installs
// from it, and refuses tampered metadata, a tampered package, an unsigned one and one signed by
// another key.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync, openSync, writeSync, closeSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installInto } from '../../src/consume/install.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { packageLayers } from '../../src/package/package.js';
import { renderRepoFile } from '../../src/repository/repo-file.js';
import { readSnapshot, servedStamp } from '../../src/repository/snapshot.js';
import { Store } from '../../src/store/store.js';
import { signatureKeyId } from '../../src/tools/rpmbuild.js';
import { cli } from '../helpers/cli.js';
import { dropTestKey, makeTestKey, type TestKey } from '../helpers/gpg.js';
import { serveDirectory, type Server } from '../helpers/http.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { fakeBuild, publishedDemoChain } from '../helpers/tiny.js';
import { run } from '../helpers/run.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('signing');
const storeDir = path.join(tmp, 'store');
const store = new Store(storeDir);
const repo = path.join(tmp, 'repo');
let ls: LayerSet;
let layersDir: string;
let key: TestKey;
let other: TestKey;
let rpms: string[];
const servers: Server[] = [];
let server: Server;
const savedHome = process.env.GNUPGHOME;

async function serve(dir: string): Promise<Server> {
  const s = await serveDirectory(dir);
  servers.push(s);
  return s;
}

/** dnf as a test machine runs it: configured only by a .repo file, into a scratch root. */
async function dnfInstall(name: string, repoFile: string, pkgs: string[]): Promise<{ code: number | null; output: string }> {
  const dir = path.join(tmp, `dnf-${name}`);
  mkdirSync(path.join(dir, 'repos.d'), { recursive: true });
  writeFileSync(path.join(dir, 'repos.d', 'ost-images.repo'), repoFile);
  // Asynchronous: dnf can take minutes on a busy machine, and a blocked worker fails the run.
  const r = await run('dnf', ['-y', `--installroot=${path.join(dir, 'root')}`, '--releasever=ost', `--setopt=reposdir=${path.join(dir, 'repos.d')}`, `--setopt=cachedir=${path.join(dir, 'cache')}`, 'install', ...pkgs]);
  return { code: r.code, output: `${r.stdout}\n${r.stderr}` };
}

/**
 * A repository an attacker (or a broken mirror) serves: the given package files, fresh metadata,
 * and repomd.xml signed with `signer` so that only the package checks stand in the way.
 */
async function forgedRepo(name: string, files: string[], signer: TestKey): Promise<Server> {
  const dir = path.join(tmp, name);
  mkdirSync(path.join(dir, 'packages'), { recursive: true });
  for (const f of files) copyFileSync(f, path.join(dir, 'packages', path.basename(f)));
  execFileSync('createrepo_c', ['--quiet', dir]);
  execFileSync('gpg', ['--batch', '--yes', '--armor', '--local-user', signer.email, '--detach-sign', path.join(dir, 'repodata', 'repomd.xml')], { env: { ...process.env, GNUPGHOME: signer.home } });
  return serve(dir);
}

const repoFileFor = (baseUrl: string) => renderRepoFile(baseUrl, true).replace(/^gpgkey=.*$/m, `gpgkey=${server.url}RPM-GPG-KEY-ost-images`);
const poolFile = (layer: string) => path.join(repo, 'packages', readdirSync(path.join(repo, 'packages')).find((f) => f.startsWith(`ost-images-demo-${layer}-12-`))!);

beforeAll(async () => {
  key = makeTestKey();
  other = makeTestKey('someone-else@example.invalid');
  layersDir = writeLayerSet(demoSet({ isDefault: true })).layersDir;
  ls = loadLayerSet(layersDir, 'demo');
  // Published unsigned first: the first signed publish must sign what is already there too.
  rpms = (await publishedDemoChain(ls, store, repo)).rpms;
  server = await serve(repo);
});

afterAll(() => {
  servers.forEach((s) => s.stop());
  if (savedHome === undefined) delete process.env.GNUPGHOME;
  else process.env.GNUPGHOME = savedHome;
  dropTestKey(key);
  dropTestKey(other);
  removeTree(tmp);
});

describe('a signed publish', () => {
  it('signs every package (re-signing those published unsigned before) and repomd.xml, and publishes the key and a .repo file', async () => {
    await fakeBuild(store, 'demo', 'engine-installed', '20260105000000', store.current('demo', 'upgrade')!, 0x66);
    await packageLayers(ls, ['engine-installed'], store);
    const r = await cli(['publish', '--set', 'demo', '--layers-dir', layersDir, '--store', storeDir, '--repo', repo, '--sign-key', key.email, '--url', server.url, '--json'], { GNUPGHOME: key.home });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { added: string[]; resigned: string[]; signedBy: string };
    expect(out.signedBy).toBe(key.fingerprint);
    expect(out.added).toEqual(['ost-images-demo-engine-installed-12-20260105000000.noarch.rpm']);
    expect(out.resigned.length).toBe(4);
    const keyId = key.fingerprint.slice(-16).toLowerCase();
    for (const f of readdirSync(path.join(repo, 'packages'))) expect(await signatureKeyId(path.join(repo, 'packages', f)), f).toBe(keyId);
    // The store's packages stay as built; signing worked on copies.
    for (const f of rpms) expect(await signatureKeyId(f)).toBeUndefined();
    execFileSync('gpg', ['--batch', '--verify', path.join(repo, 'repodata', 'repomd.xml.asc'), path.join(repo, 'repodata', 'repomd.xml')], { env: { ...process.env, GNUPGHOME: key.home }, stdio: 'ignore' });
    expect(readFileSync(path.join(repo, 'RPM-GPG-KEY-ost-images'), 'utf8')).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    const repoFile = readFileSync(path.join(repo, 'ost-images.repo'), 'utf8');
    expect(repoFile).toContain(`baseurl=${server.url}\n`);
    expect(repoFile).toContain('gpgcheck=1\nrepo_gpgcheck=1\n');
    expect(repoFile).toContain(`gpgkey=${server.url}RPM-GPG-KEY-ost-images\n`);
    expect(readSnapshot(repo, servedStamp(repo)!).signedBy).toBe(key.fingerprint);
  });

  it('a test machine configured by the published .repo file installs the chain, checking every signature', async () => {
    const r = await dnfInstall('good', readFileSync(path.join(repo, 'ost-images.repo'), 'utf8'), ['ost-images-engine-installed']);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('Importing GPG key');
    const root = path.join(tmp, 'dnf-good', 'root');
    const installed = execFileSync('rpm', ['--root', root, '-qa', '--qf', '%{NAME}\\n']).toString().split('\n').filter(Boolean).sort();
    expect(installed).toEqual(['gpg-pubkey', 'ost-images-demo-base', 'ost-images-demo-engine-installed', 'ost-images-demo-upgrade']);
  });

  it('`ost-images install --gpgcheck` checks against the published key too', async () => {
    const r = await installInto(path.join(tmp, 'root-install'), server.url, ['ost-images-host-installed'], true);
    expect(r.installed.filter((n) => n.startsWith('ost-images-'))).toHaveLength(3);
  });
});

describe('a test machine refuses', () => {
  it('metadata changed after signing (repomd.xml no longer matches its signature)', async () => {
    const copy = path.join(tmp, 'tampered-md');
    cpSync(repo, copy, { recursive: true, verbatimSymlinks: true });
    const repomd = path.join(copy, 'repodata', 'repomd.xml');
    writeFileSync(repomd, readFileSync(repomd, 'utf8').replace('</repomd>', '<!-- changed --></repomd>'));
    const evil = await serve(copy);
    const r = await dnfInstall('tampered-md', repoFileFor(evil.url), ['ost-images-engine-installed']);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/repomd\.xml GPG signature verification error: Bad GPG signature/);
  });

  it('a package whose bytes were changed after signing', async () => {
    const files = ['base', 'upgrade', 'engine-installed'].map(poolFile);
    const evil = await forgedRepo('tampered-pkg', files, key);
    const target = path.join(tmp, 'tampered-pkg', 'packages', path.basename(files[0]!));
    // Flip bytes in the payload, then regenerate and re-sign the metadata so only rpm's check is left.
    const fd = openSync(target, 'r+');
    writeSync(fd, Buffer.from('tampered'), 0, 8, statSync(target).size - 64);
    closeSync(fd);
    execFileSync('createrepo_c', ['--quiet', path.join(tmp, 'tampered-pkg')]);
    execFileSync('gpg', ['--batch', '--yes', '--armor', '--local-user', key.email, '--detach-sign', path.join(tmp, 'tampered-pkg', 'repodata', 'repomd.xml')], { env: { ...process.env, GNUPGHOME: key.home } });
    const r = await dnfInstall('tampered-pkg', repoFileFor(evil.url), ['ost-images-engine-installed']);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/Problem opening package ost-images-demo-base-[\s\S]*GPG check FAILED/);
  });

  it('an unsigned package', async () => {
    const evil = await forgedRepo('unsigned-pkg', [poolFile('base'), poolFile('upgrade'), rpms[2]!], key);
    const r = await dnfInstall('unsigned-pkg', repoFileFor(evil.url), ['ost-images-engine-installed']);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/ost-images-demo-engine-installed.* is not signed/);
  });

  it('a package signed by another key', async () => {
    const copy = path.join(tmp, 'other-key.rpm');
    copyFileSync(rpms[2]!, copy);
    execFileSync('rpmsign', ['--define', `_gpg_name ${other.email}`, '--define', '__gpg /usr/bin/gpg', '--addsign', copy], { env: { ...process.env, GNUPGHOME: other.home }, stdio: 'ignore' });
    const dir = path.join(tmp, 'other-key');
    const evil = await forgedRepo('other-key', [poolFile('base'), poolFile('upgrade')], key);
    copyFileSync(copy, path.join(dir, 'packages', path.basename(rpms[2]!)));
    execFileSync('createrepo_c', ['--quiet', dir]);
    execFileSync('gpg', ['--batch', '--yes', '--armor', '--local-user', key.email, '--detach-sign', path.join(dir, 'repodata', 'repomd.xml')], { env: { ...process.env, GNUPGHOME: key.home } });
    const r = await dnfInstall('other-key', repoFileFor(evil.url), ['ost-images-engine-installed']);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/ost-images-demo-engine-installed[\s\S]*(not installed|NOKEY|public key)/i);
  });
});

describe('publishing without the key', () => {
  it('into a signed repository is refused with exit code 2, changing nothing; --unsigned does it deliberately', async () => {
    await fakeBuild(store, 'demo', 'engine-installed', '20260106000000', store.current('demo', 'upgrade')!, 0x67);
    await packageLayers(ls, ['engine-installed'], store);
    const before = servedStamp(repo);
    const args = ['publish', '--set', 'demo', '--layers-dir', layersDir, '--store', storeDir, '--repo', repo];
    const r = await cli(args, { GNUPGHOME: key.home });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is signed (key');
    expect(servedStamp(repo)).toBe(before);
    const u = await cli([...args, '--unsigned'], { GNUPGHOME: key.home });
    expect(u.code, u.stderr).toBe(0);
    expect(u.stderr).toContain('unsigned');
    expect(readFileSync(path.join(repo, 'ost-images.repo'), 'utf8')).toContain('gpgcheck=0\n');
  });

  it('a key that is not in the keyring is bad input: exit code 2', async () => {
    const r = await cli(['publish', '--set', 'demo', '--layers-dir', layersDir, '--store', storeDir, '--repo', repo, '--sign-key', 'nobody@example.invalid'], { GNUPGHOME: key.home });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--sign-key: no secret key 'nobody@example.invalid'");
  });
});
