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
import { writeJsonAtomic } from './fsutil.js';
import { log } from './log.js';
import { acquireLock } from './lock.js';
import { pidAlive } from './proc.js';
import { flatImageFileName, imageFileName, releaseTime, type BuildId } from './plan/naming.js';
import type { LayerManifest } from './plan/keys.js';

export interface ParentRef extends BuildId {
  layer: string;
  image: string;
}

export interface BuildRecord extends BuildId {
  schema: 1;
  set: string;
  layer: string;
  /** Input key and the manifest it was computed from (absent in records of older toolchains). */
  key?: string;
  manifest?: LayerManifest;
  /** File name in the set's images directory. */
  image: string;
  parent?: ParentRef;
  /** Root SSH key pair (base layers): file names in the images directory. */
  sshKey?: { private: string; public: string };
  /** The guest's package list and its diff against the parent (file names in the images directory). */
  packages?: PackagesInfo;
  backend: string;
  builtAt: string;
  seconds: number;
  virtualSize: number;
  allocatedSize: number;
}

/**
 * The build record as a package ships it: without what is true of one run only (when it ran, how
 * long it took), so packaging the same build, or a rebuild of it, gives the same payload. The
 * release stamp says when the build started.
 */
export type ShippedRecord = Omit<BuildRecord, 'builtAt' | 'seconds'>;

export function shippedRecord(rec: BuildRecord): ShippedRecord {
  const { builtAt: _builtAt, seconds: _seconds, ...rest } = rec;
  return rest;
}

/** A shipped record taken into a store (builder/fetch.ts): its start time from the release. */
export function fromShipped(rec: ShippedRecord & Partial<Pick<BuildRecord, 'builtAt' | 'seconds'>>): BuildRecord {
  return { ...rec, builtAt: rec.builtAt ?? releaseTime(rec.release) ?? new Date(0).toISOString(), seconds: rec.seconds ?? 0 };
}

export interface PackagesInfo {
  list: string;
  diff: string;
  count: number;
  added: number;
  removed: number;
  upgraded: number;
  downgraded: number;
  flagged?: string;
}

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
