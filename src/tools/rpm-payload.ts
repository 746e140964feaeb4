// rpm, for what a package carries rather than what it depends on: the files of its payload with
// their sizes, its summary and build time, and a few small files taken out of the payload.
import { StepError } from '../core/errors.js';
import { run } from './run.js';

export interface PayloadFacts {
  summary: string;
  /** Seconds since the epoch when rpmbuild made the package. */
  buildTime: number;
  /** Every file of the payload (directories included) with its size in bytes. */
  files: { path: string; bytes: number }[];
}

// One field per line; the summary is folded onto one line by the spec view model (rpmText).
const QF = '%{SUMMARY}\\n%{BUILDTIME}\\n[%{FILESIZES} %{FILENAMES}\\n]';

export function payloadQueryArgs(file: string): string[] {
  return ['-qp', '--nosignature', '--nodigest', '--qf', QF, file];
}

export function parsePayloadQuery(text: string): PayloadFacts {
  const [summary, buildTime, ...rest] = text.split('\n');
  const files = rest
    .filter((l) => l.length > 0)
    .map((l) => {
      const sp = l.indexOf(' ');
      return { path: l.slice(sp + 1), bytes: Number(l.slice(0, sp)) };
    });
  return { summary: summary ?? '', buildTime: Number(buildTime), files };
}

export async function payloadFacts(file: string): Promise<PayloadFacts> {
  return parsePayloadQuery((await run('rpm', payloadQueryArgs(file))).stdout);
}

/**
 * Unpacks a package into an empty scratch root, leaving out `exclude` (absolute paths in the
 * payload: the disk image, which is all of a layer package's size). rpm itself rather than
 * rpm2cpio | cpio: one process and an argv, no pipe between two; the payload is decompressed as a
 * stream either way, and what is left out is never written. No scripts, no dependencies, no
 * signature check (the repository checks signatures; this only reads facts).
 */
export function extractArgs(file: string, root: string, exclude: string[]): string[] {
  return [
    '--install',
    '--root', root,
    '--dbpath', `${root}/.rpmdb`,
    '--nodeps', '--noscripts', '--notriggers', '--nosignature', '--nodigest', '--ignorearch', '--ignoreos',
    ...exclude.flatMap((p) => ['--excludepath', p]),
    file,
  ];
}

export async function extractPayload(file: string, root: string, exclude: string[]): Promise<void> {
  for (const p of exclude) if (!p.startsWith('/')) throw new StepError(`extractPayload: '${p}' is not an absolute path in the payload`);
  await run('rpm', extractArgs(file, root, exclude));
}

/**
 * The payload's digests from the header: of the compressed payload as stored (PAYLOADDIGEST) and
 * of the uncompressed cpio archive (PAYLOADDIGESTALT, rpm 4.16+): the latter says whether two
 * packages hold the same files whatever compressor made them.
 */
export async function payloadDigests(file: string): Promise<{ compressed: string; uncompressed: string }> {
  const out = (await run('rpm', ['-qp', '--nosignature', '--nodigest', '--qf', '%{PAYLOADDIGEST}\\n%{PAYLOADDIGESTALT}\\n', file])).stdout.split('\n');
  return { compressed: out[0] ?? '', uncompressed: out[1] ?? '' };
}
