// Small file-system helpers with the atomicity rules every stage relies on.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Writes a file so that readers see the old content or the new, never a part of it. The temporary
 * name is unique across hosts too: staging directories are shared by runners (over NFS, pids of
 * different hosts collide).
 */
export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${os.hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

