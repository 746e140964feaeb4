// The kickstart template's contract: the variables a layer's kickstart template can use, and the
// strict rendering. Part of the definitions stage because `validate` renders every template with
// sample values (a misspelt variable is bad input before any build); the builder renders the
// same way with the real values (builder/kickstart.ts).
import { handlebars } from '../core/handlebars.js';
import type { KickstartBase, SetDef } from './types.js';

/** What a kickstart template can use. */
export interface KickstartVars {
  hostname: string;
  rootSshKey: string;
  diskSizeMiB: number;
  repos: { name: string; url: string }[];
  kernelCmdline: string;
  set: { name: string; version: string };
  /** The %post line that tells the builder the install finished. */
  doneMarker: string;
}

export const DONE_MARKER = 'OST-IMAGES-KICKSTART-DONE';
/** The serial console every kickstart-installed system and its installer use (the boot test reads it). */
export const SERIAL = 'console=ttyS0,115200n8';

export function kickstartVars(set: SetDef, base: KickstartBase, sshPublicKey: string): KickstartVars {
  return {
    hostname: base.hostname,
    rootSshKey: sshPublicKey.trim(),
    diskSizeMiB: Math.floor(set.image.sizeBytes / 2 ** 20),
    repos: Object.entries(base.repos).map(([name, url]) => ({ name, url })),
    kernelCmdline: [SERIAL, ...base.kernelCmdline].join(' '),
    set: { name: set.name, version: set.distro.version },
    doneMarker: DONE_MARKER,
  };
}

/** Renders the template strictly: a variable the template names but the builder lacks is an error. */
export function renderKickstart(template: string, vars: KickstartVars): string {
  return handlebars().compile<KickstartVars>(template, { noEscape: true, strict: true })(vars);
}
