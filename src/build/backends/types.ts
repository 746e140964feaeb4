import type { LayerDef, SetDef } from '../../definitions/types.js';

export interface CustomizeContext {
  set: SetDef;
  layer: LayerDef;
  /** The partial overlay to change in place. */
  image: string;
  work: string;
}

/** Applies a layer's steps to its overlay. */
export interface Backend {
  readonly name: 'chroot' | 'guestfs';
  customize(ctx: CustomizeContext): Promise<void>;
}
