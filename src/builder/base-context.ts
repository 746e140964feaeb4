// What every way of making a base layer (base.ts: mmdebstrap, a cloud image; kickstart.ts: an
// installer) is given: the set and layer, where to write, the root key, work and cache folders,
// and the layer's key and time (the seeds and SOURCE_DATE_EPOCH of a reproducible base).
import type { LayerDef, SetDef } from '../definitions/types.js';

export interface BaseContext {
  set: SetDef;
  layer: LayerDef;
  /** The partial image to create. */
  image: string;
  /** Public half of the root key pair, already generated. */
  sshPublicKey: string;
  work: string;
  /** The download cache (cloud images, ISOs). */
  downloads: string;
  /** Where installer console logs go (kept when an install fails). */
  consoleDir: string;
  /** The layer's input key: the seeds of its disk and file system are derived from it. */
  key: string;
  /** The layer's SOURCE_DATE_EPOCH (plan/epoch.ts). */
  epoch: number;
}
