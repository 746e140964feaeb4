import type { LayerDef, SetDef } from '../../definitions/types.js';

export interface CustomizeContext {
  set: SetDef;
  layer: LayerDef;
  /** The partial overlay to change in place. */
  image: string;
  work: string;
  /** The layer's SOURCE_DATE_EPOCH (plan/epoch.ts): the guest's tools read it, file times are clamped to it. */
  epoch: number;
}

/**
 * Applies a layer's steps to its overlay. Resolves to the guest's installed packages afterwards
 * ("name version" lines), or undefined when the guest has no package manager to ask.
 */
export interface Backend {
  readonly name: 'chroot' | 'guestfs';
  customize(ctx: CustomizeContext): Promise<string | undefined>;
}
