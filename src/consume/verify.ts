// Checks that an image's backing chain resolves and every image in it is consistent.
import path from 'node:path';
import { StepError } from '../core/errors.js';
import * as qemuImg from '../tools/qemu-img.js';

export interface ChainLink {
  file: string;
  backing?: string;
  virtualSize: number;
  actualSize: number;
}

export async function verifyChain(image: string): Promise<ChainLink[]> {
  const chain = await qemuImg.chain(image);
  const links: ChainLink[] = [];
  for (const c of chain) {
    if (c['backing-filename'] && path.isAbsolute(c['backing-filename'])) {
      throw new StepError(`${c.filename} names its backing file by absolute path ${c['backing-filename']}; installed chains need relative names`);
    }
    await qemuImg.check(c.filename);
    links.push({ file: c.filename, backing: c['full-backing-filename'], virtualSize: c['virtual-size'], actualSize: c['actual-size'] });
  }
  return links;
}
