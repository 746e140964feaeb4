// Takes a published layer into the store instead of building it: the package is downloaded,
// checked (the repository's sha256, rpm's own digests, the shipped build record against what this
// layer, key and parent build must be, qemu-img check next to its parent), and only then committed.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { RemoteRef } from '../records/remote.js';
import { StepError } from '../core/errors.js';
import { log } from '../core/log.js';
import { recordFileName } from '../package/spec.js';
import { imageFileName, packageDiffFileName, packageListFileName, sshKeyFileName } from '../definitions/naming.js';
import { fromShipped, type BuildRecord, type ShippedRecord } from '../records/build.js';
import type { Store } from '../store/store.js';
import { download } from '../tools/http.js';
import * as qemuImg from '../tools/qemu-img.js';
import { rpmChecksig, rpmInstallIntoScratch } from '../tools/rpmbuild.js';

/** Download, verify, extract with rpm into a scratch root on the store's file system, rename the image (and key pair) into place, commit the shipped record. */
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
    const rec = fromShipped(JSON.parse(readFileSync(path.join(dir, recordFile), 'utf8')) as ShippedRecord);
    // The record comes from the network: everything in it that becomes a path or a choice must be
    // exactly what this layer, this key and this package imply.
    const id = { version: rec.version, release: rec.release };
    const expected = {
      key: ref.key, set, layer, release: ref.release, image: imageFileName(set, layer, id),
      parent: parent?.release, sshKey: rec.sshKey ? { private: sshKeyFileName(set, layer, id), public: `${sshKeyFileName(set, layer, id)}.pub` } : undefined,
    };
    const actual = { key: rec.key, set: rec.set, layer: rec.layer, release: rec.release, image: rec.image, parent: rec.parent?.release, sshKey: rec.sshKey };
    const packageFiles = rec.packages ? [rec.packages.list, rec.packages.diff] : [];
    if (rec.packages && (rec.packages.list !== packageListFileName(set, layer, id) || rec.packages.diff !== packageDiffFileName(set, layer, id))) {
      throw new StepError(`${ref.nvr}: its build record names unexpected package-list files`);
    }
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
    for (const f of [rec.sshKey?.private, rec.sshKey?.public, ...packageFiles]) {
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
