// What the mirror tests read of a repository and of its mirrors: the report of `mirror --json`,
// the files a client can see, their checksums, the top-level links the switch changes.
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import type { MirrorReport } from '../../src/publish/mirror.js';
import { readSnapshot } from '../../src/publish/snapshot.js';
import { cli } from './cli.js';

/** `ost-images mirror --repo REPO ARGS --json`, its report parsed (an error with stderr when there is none). */
export async function mirrorJson(repo: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; report: MirrorReport; stderr: string }> {
  const r = await cli(['mirror', '--repo', repo, ...args, '--json'], env);
  let report: MirrorReport;
  try {
    report = JSON.parse(r.stdout) as MirrorReport;
  } catch {
    throw new Error(`no JSON report (exit ${r.code}):\n${r.stderr}`);
  }
  return { code: r.code, report, stderr: r.stderr };
}

/** The packages a snapshot lists, as `name-version-release.arch.rpm`, sorted. */
export const packagesOf = (repo: string, stamp: string): string[] => readSnapshot(repo, stamp).packages.map((p) => p.file).sort();

export const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Every file under `dir` not hidden anywhere on its path (but .snapshots), relative. */
export function visibleFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(dir, rel))) {
    if (name.startsWith('.') && !(rel === '' && name === '.snapshots')) continue;
    const p = path.join(rel, name);
    const st = lstatSync(path.join(dir, p));
    if (st.isDirectory()) out.push(...visibleFiles(dir, p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

/** Every top-level symlink of a repository with its target: what the switch changes, in either layout. */
export function topLinks(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) if (lstatSync(path.join(dir, name)).isSymbolicLink()) out[name] = readlinkSync(path.join(dir, name));
  return out;
}
