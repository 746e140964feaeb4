// The layer store: where built images, their build records and their RPMs live between stages.
//
//   <store>/<set>/images/<layer>-<V>-<R>.qcow2   read-only layer images; children name their parent
//                                                by relative file name, so this directory is a valid
//                                                chain exactly as the installed one is
//   <store>/<set>/builds/<layer>/<V>-<R>.json    one record per build
//   <store>/<set>/builds/<layer>/current.json    the build the next child is made on
//   <store>/<set>/rpms/                          packages made from those builds
//   <store>/tmp/                                 work directories (same file system: renames are atomic)
//   <store>/<set>/lock                           one build/package run per set at a time
//
// In-progress images are written as `.<name>.partial` next to their parent and renamed when
// complete, so no later step ever picks up a half-built layer.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeJsonAtomic } from '../core/fsutil.js';
import { log } from '../core/log.js';
import { acquireLock } from '../core/lock.js';
import { pidAlive } from '../core/proc.js';
import type { BuildId } from '../records/build.js';
import { flatImageFileName, imageFileName } from '../definitions/naming.js';
import type { BuildRecord } from '../records/build.js';





export function defaultStoreDir(): string {
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'ost-images');
}

export class Store {
  readonly root: string;

  constructor(root: string) {
    // Absolute: mount points, loop back-files and /proc/*/root are compared against it.
    this.root = path.resolve(root);
  }

  imagesDir(set: string): string {
    return path.join(this.root, set, 'images');
  }
  /** Downloaded base images and ISOs, by sha256 (shared by every set). */
  downloadsDir(): string {
    return path.join(this.root, 'downloads');
  }
  rpmsDir(set: string): string {
    return path.join(this.root, set, 'rpms');
  }
  private buildsDir(set: string, layer: string): string {
    return path.join(this.root, set, 'builds', layer);
  }
  imagePath(set: string, file: string): string {
    return path.join(this.imagesDir(set), file);
  }

  ensure(set: string): void {
    for (const d of [this.imagesDir(set), this.rpmsDir(set), path.join(this.root, 'tmp')]) mkdirSync(d, { recursive: true });
  }

  /**
   * A fresh work directory on the store's file system. Its name carries the owner's pid so a
   * later run can tell the leftovers of a killed run (see build/recover.ts) from live work.
   */
  workDir(label: string): string {
    mkdirSync(this.tmpDir(), { recursive: true });
    return mkdtempSync(path.join(this.tmpDir(), `${label}.${process.pid}.`));
  }

  tmpDir(): string {
    return path.join(this.root, 'tmp');
  }

  /** Work directories whose owning process is gone. */
  orphanedWorkDirs(): string[] {
    if (!existsSync(this.tmpDir())) return [];
    return readdirSync(this.tmpDir())
      .filter((d) => {
        const pid = Number(/\.([0-9]+)\.[^.]+$/.exec(d)?.[1]);
        return pid > 0 && !pidAlive(pid);
      })
      .map((d) => path.join(this.tmpDir(), d));
  }

  current(set: string, layer: string): BuildRecord | undefined {
    const file = path.join(this.buildsDir(set, layer), 'current.json');
    if (!existsSync(file)) return undefined;
    const rec = JSON.parse(readFileSync(file, 'utf8')) as BuildRecord;
    // A record whose image has gone (deleted by hand) is no build at all.
    if (!existsSync(this.imagePath(set, rec.image))) {
      log.warn(`build record ${file} names missing image ${rec.image}; ignoring it`);
      return undefined;
    }
    return rec;
  }

  builds(set: string, layer: string): BuildRecord[] {
    const dir = this.buildsDir(set, layer);
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.json') && f !== 'current.json')
      .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as BuildRecord)
      .sort((a, b) => a.release.localeCompare(b.release));
  }

  /** Where a build's record is kept. */
  recordPath(rec: BuildId & { set: string; layer: string }): string {
    return path.join(this.buildsDir(rec.set, rec.layer), `${rec.version}-${rec.release}.json`);
  }

  /** Records a completed build and makes it the current one for its layer. */
  commit(rec: BuildRecord): void {
    const dir = this.buildsDir(rec.set, rec.layer);
    mkdirSync(dir, { recursive: true });
    writeJsonAtomic(this.recordPath(rec), rec);
    writeJsonAtomic(path.join(dir, 'current.json'), rec);
  }

  /**
   * Takes the set's lock, waiting while another live process holds it: a second build started
   * while one runs then plans after it and reuses what it built. A dead owner's lock is broken and
   * its half-built images removed.
   */
  async lock(set: string, opts: { waitMs?: number } = {}): Promise<() => void> {
    mkdirSync(path.join(this.root, set), { recursive: true });
    return acquireLock(path.join(this.root, set, 'lock'), `set '${set}'`, { waitMs: opts.waitMs, onStale: () => this.removePartials(set) });
  }

  /** Deletes a build: its image, key pair, record and the given package files. */
  /**
   * Deletes a build: every file named after it in the images directory (image, key pair, package
   * list and diff, flattened variant and its key pair), the given RPMs and its record.
   */
  removeBuild(rec: BuildRecord, rpms: string[]): void {
    const stems = [imageFileName(rec.set, rec.layer, rec), flatImageFileName(rec.set, rec.layer, rec)].map((f) => f.replace(/qcow2$/, ''));
    const dir = this.imagesDir(rec.set);
    const files = (existsSync(dir) ? readdirSync(dir) : []).filter((f) => stems.some((s) => f.startsWith(s))).map((f) => path.join(dir, f));
    for (const f of [...files, ...rpms.map((r) => path.join(this.rpmsDir(rec.set), r)), this.recordPath(rec)]) rmSync(f, { force: true });
  }

  /** Deletes half-built images left by a run that died without cleaning up. */
  removePartials(set: string): void {
    const dir = this.imagesDir(set);
    if (!existsSync(dir)) return;
    for (const f of readdirSync(dir)) {
      if (f.includes('.partial')) {
        log.warn(`removing half-built image ${f} left by an earlier run`);
        rmSync(path.join(dir, f), { force: true });
      }
    }
  }
}
