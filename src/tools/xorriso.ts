// xorriso: reads installer ISOs (kernel, initrd, volume id) and makes the small OEMDRV volume
// that carries a kickstart file (Anaconda looks for ks.cfg on a volume with that label).
import { run } from './run.js';

export function extractArgs(iso: string, inside: string, dest: string): string[] {
  return ['-osirrox', 'on', '-indev', iso, '-extract', inside, dest];
}

export async function extract(iso: string, inside: string, dest: string): Promise<void> {
  await run('xorriso', extractArgs(iso, inside, dest));
}

/** The ISO's volume id (what inst.stage2=hd:LABEL=... names). */
export async function volumeId(iso: string): Promise<string> {
  const r = await run('xorriso', ['-indev', iso, '-pvd_info']);
  const id = /^Volume Id\s*:\s*(.+)$/m.exec(`${r.stdout}\n${r.stderr}`)?.[1]?.trim();
  if (!id) throw new Error(`no volume id in ${iso}`);
  return id;
}

export function makeIsoArgs(dir: string, out: string, label: string): string[] {
  return ['-as', 'mkisofs', '-quiet', '-V', label, '-J', '-R', '-o', out, dir];
}

export async function makeIso(dir: string, out: string, label: string): Promise<void> {
  await run('xorriso', makeIsoArgs(dir, out, label));
}
