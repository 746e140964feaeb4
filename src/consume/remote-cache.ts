// Reading a published repository as a cache shared by every builder: which layer keys it
// publishes (each layer package provides `ost-images-key(<input key>)`), and where. Taking such a
// layer into the store is the build stage's job (build/fetch.ts).
import { gunzipSync } from 'node:zlib';
import { StepError } from '../errors.js';
import { log } from '../log.js';
import { fetchBytes } from '../tools/http.js';
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
