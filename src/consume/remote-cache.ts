// The published repository as a cache shared by every builder. Each layer package provides
// `ost-images-key(<input key>)` and ships its build record; a builder that needs a layer whose key
// is published downloads that package, checks it (the repository's sha256 and rpm's own digests),
// and takes the image and record into its store instead of building.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { StepError } from '../errors.js';
import { log } from '../log.js';
import { recordFileName } from '../package/spec.js';
import type { BuildRecord, Store } from '../store.js';
import { download, fetchBytes } from '../tools/http.js';
import { rpmInstallIntoScratch, rpmChecksig } from '../tools/rpmbuild.js';
import * as qemuImg from '../tools/qemu-img.js';
import { imageFileName, sshKeyFileName } from '../plan/naming.js';
import { repoUrl } from './install.js';

export interface RemoteRef {
  key: string;
  repo: string;
  /** Package location relative to the repository root. */
  href: string;
  sha256: string;
  nvr: string;
  release: string;
  /** The release of the parent build it requires (exact `=` Requires), if it has a parent. */
  parentRelease?: string;
}

const unescape = (s: string): string => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');

/**
 * Keys published in a repository, from its primary metadata. createrepo_c writes one <package>
 * element per package with its <location>, <checksum pkgid="YES"> and <rpm:provides> entries;
 * only those three are read.
 */
export function keysInPrimary(xml: string, repo: string): Map<string, RemoteRef> {
  const out = new Map<string, RemoteRef>();
  for (const pkg of xml.split('<package ').slice(1)) {
    const href = /<location [^>]*href="([^"]+)"/.exec(pkg)?.[1];
    const sha256 = /<checksum type="sha256" pkgid="YES">([0-9a-f]{64})<\/checksum>/.exec(pkg)?.[1];
    const name = /<name>([^<]+)<\/name>/.exec(pkg)?.[1];
    const v = /<version epoch="[^"]*" ver="([^"]+)" rel="([^"]+)"\/>/.exec(pkg);
    if (!href || !sha256 || !name || !v) continue;
    const requires = /<rpm:requires>([\s\S]*?)<\/rpm:requires>/.exec(pkg)?.[1] ?? '';
    const parentRelease = /<rpm:entry name="[^"]+" flags="EQ" epoch="[^"]*" ver="[^"]+" rel="([^"]+)"\/>/.exec(requires)?.[1];
    for (const m of pkg.matchAll(/<rpm:entry name="ost-images-key\(([0-9a-f]{64})\)"/g)) {
      out.set(m[1]!, { key: m[1]!, repo, href: unescape(href), sha256, nvr: `${name}-${v[1]}-${v[2]}`, release: v[2]!, parentRelease });
    }
  }
  return out;
}

/** Every published layer key of the given repositories (directories or URLs), first repo wins. */
export async function publishedKeys(repos: string[]): Promise<Map<string, RemoteRef>> {
  const all = new Map<string, RemoteRef>();
  for (const repo of repos) {
    const base = repoUrl(repo).replace(/\/?$/, '/');
    const repomd = (await fetchBytes(`${base}repodata/repomd.xml`)).toString('utf8');
    const primaryHref = /<data type="primary">[\s\S]*?<location href="([^"]+)"/.exec(repomd)?.[1];
    if (!primaryHref) throw new StepError(`${base}repodata/repomd.xml names no primary metadata`);
    const raw = await fetchBytes(`${base}${primaryHref}`);
    const xml = (primaryHref.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
    for (const [k, ref] of keysInPrimary(xml, base)) if (!all.has(k)) all.set(k, ref);
    log.debug(`cache repository ${base}: ${all.size} layer key(s)`);
  }
  return all;
}

/**
 * Takes a published layer into the store: download, verify, extract with rpm into a scratch root on
 * the store's file system, rename image (and key pair) into place, commit the shipped record.
 */
export async function fetchLayer(ref: RemoteRef, store: Store, set: string, layer: string, parent: BuildRecord | undefined, installDir: string): Promise<BuildRecord> {
  const work = store.workDir(`fetch-${ref.nvr}`);
  try {
    const rpm = path.join(work, 'package.rpm');
    log.info(`fetching ${ref.nvr} from ${ref.repo}`);
    const sha = await download(`${ref.repo}${ref.href}`, rpm);
    if (sha !== ref.sha256) throw new StepError(`${ref.href}: sha256 ${sha} does not match the repository's ${ref.sha256}`);
    await rpmChecksig(rpm);
    const root = path.join(work, 'root');
    mkdirSync(root);
    await rpmInstallIntoScratch(rpm, root);
    const dir = path.join(root, installDir);
    const recordFile = readdirSync(dir).find((f) => f.endsWith('.build.json'));
    if (!recordFile) throw new StepError(`${ref.nvr} ships no build record; it was made by an older ost-images`);
    const rec = JSON.parse(readFileSync(path.join(dir, recordFile), 'utf8')) as BuildRecord;
    // The record comes from the network: everything in it that becomes a path or a choice must be
    // exactly what this layer, this key and this package imply.
    const id = { version: rec.version, release: rec.release };
    const expected = {
      key: ref.key, set, layer, release: ref.release, image: imageFileName(layer, id),
      parent: parent?.release, sshKey: rec.sshKey ? { private: sshKeyFileName(layer, id), public: `${sshKeyFileName(layer, id)}.pub` } : undefined,
    };
    const actual = { key: rec.key, set: rec.set, layer: rec.layer, release: rec.release, image: rec.image, parent: rec.parent?.release, sshKey: rec.sshKey };
    if (JSON.stringify(actual) !== JSON.stringify(expected) || recordFileName(rec) !== recordFile || !/^[A-Za-z0-9._+~^]+$/.test(rec.version)) {
      throw new StepError(`${ref.nvr}: its build record does not describe layer '${layer}' with key ${ref.key} on ${parent ? `${parent.layer} ${parent.release}` : 'no parent'}`);
    }
    const images = store.imagesDir(set);
    // Checked next to its parent (its backing name is relative) under a name no step picks up.
    const partial = path.join(images, `.${rec.image}.partial`);
    renameSync(path.join(dir, rec.image), partial);
    try {
      await qemuImg.check(partial);
    } catch (err) {
      rmSync(partial, { force: true });
      throw err;
    }
    for (const f of [rec.sshKey?.private, rec.sshKey?.public]) {
      if (f && !existsSync(path.join(images, f))) renameSync(path.join(dir, f), path.join(images, f));
    }
    renameSync(partial, path.join(images, rec.image));
    // Keep the published package itself: packaging the layer again would make different bytes
    // under the same name-version-release.
    mkdirSync(store.rpmsDir(set), { recursive: true });
    renameSync(rpm, path.join(store.rpmsDir(set), path.basename(ref.href)));
    store.commit(rec);
    return rec;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
