// rpmbuild and rpm: build a package from a rendered spec in a private topdir; read headers.
import { StepError } from '../core/errors.js';
import { run } from './run.js';

export function rpmbuildArgs(spec: string, o: { topdir: string; buildroot: string; outdir: string }): string[] {
  return [
    '-bb',
    '--quiet',
    '--define', `_topdir ${o.topdir}`,
    '--define', `_tmppath ${o.topdir}/tmp`,
    '--define', `_rpmdir ${o.outdir}`,
    // A flat output directory with plain NVRA names, not <arch>/ subdirectories.
    '--define', '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm',
    '--buildroot', o.buildroot,
    spec,
  ];
}

/**
 * `sourceDateEpoch`: the layer's; with it the spec's clamp_mtime_to_source_date_epoch and
 * use_source_date_epoch_as_buildtime make file times and the build time of the header its own.
 */
export async function rpmbuild(spec: string, o: { topdir: string; buildroot: string; outdir: string; sourceDateEpoch?: number }): Promise<void> {
  await run('rpmbuild', rpmbuildArgs(spec, o), { env: o.sourceDateEpoch !== undefined ? { SOURCE_DATE_EPOCH: String(o.sourceDateEpoch) } : {} });
}

export interface RpmHeader {
  name: string;
  version: string;
  release: string;
  provides: string[];
  requires: string[];
}

const QF = '%{NAME}\\n%{VERSION}\\n%{RELEASE}\\n[P %{PROVIDES} %{PROVIDEFLAGS:depflags} %{PROVIDEVERSION}\\n][R %{REQUIRES} %{REQUIREFLAGS:depflags} %{REQUIREVERSION}\\n]';

export function queryArgs(file: string): string[] {
  return ['-qp', '--nosignature', '--nodigest', '--qf', QF, file];
}

function parseQuery(text: string): RpmHeader & { files: string[] } {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const [name, version, release, ...rest] = lines;
  const tagged = (prefix: string) => rest.filter((d) => d.startsWith(prefix)).map((d) => d.slice(2).replace(/\s+/g, ' ').trim());
  return { name: name!, version: version!, release: release!, provides: tagged('P '), requires: tagged('R ').filter((r) => !r.startsWith('rpmlib(')), files: tagged('F ') };
}

export async function readHeader(file: string): Promise<RpmHeader> {
  const { files: _files, ...h } = parseQuery((await run('rpm', queryArgs(file))).stdout);
  return h;
}

/** Installed packages of a root that provide `provide`, with their dependencies and files. */
export async function installedProviding(root: string, provide: string): Promise<(RpmHeader & { files: string[] })[]> {
  const r = await run('rpm', ['--root', root, '-q', '--whatprovides', provide, '--qf', `@@${QF}[F %{FILENAMES}\\n]`], { allowFailure: true });
  // rpm -q exits 1 when nothing provides it.
  if (r.exitCode !== 0 && /no package provides/.test(r.stdout + r.stderr)) return [];
  if (r.exitCode !== 0) throw new StepError(`rpm --root ${root} -q --whatprovides ${provide} failed: ${r.stderr.trim()}`);
  return r.stdout.split('@@').slice(1).map(parseQuery);
}

/** Checks a package's digests (signatures are issue of the repository's gpg configuration). */
export async function rpmChecksig(file: string): Promise<void> {
  await run('rpm', ['--checksig', '--nosignature', file]);
}

/** Unpacks a package into an empty scratch root with its own database; no scripts, no deps. */
export function scratchInstallArgs(file: string, root: string): string[] {
  return ['--install', '--root', root, '--dbpath', `${root}/rpmdb`, '--nodeps', '--noscripts', '--nosignature', '--ignorearch', file];
}

export async function rpmInstallIntoScratch(file: string, root: string): Promise<void> {
  await run('rpm', scratchInstallArgs(file, root));
}

/** Installed packages of a root, "name-version-release" each, sorted. */
export async function installedNvrs(root: string): Promise<string[]> {
  const out = (await run('rpm', ['--root', root, '-qa', '--qf', '%{NAME}-%{VERSION}-%{RELEASE}\\n'])).stdout;
  return out.split('\n').filter(Boolean).sort();
}

/**
 * The key id (last 16 hex digits of the fingerprint, lower case) of a package's header signature,
 * or undefined when unsigned. RSA keys sign into RSAHEADER, DSA/ECDSA/EdDSA ones into DSAHEADER.
 */
export async function signatureKeyId(file: string): Promise<string | undefined> {
  const qf = '%|DSAHEADER?{%{DSAHEADER:pgpsig}}:{%|RSAHEADER?{%{RSAHEADER:pgpsig}}:{(none)}|}|';
  const out = (await run('rpm', ['-qp', '--nosignature', '--nodigest', '--qf', qf, file])).stdout;
  return /Key ID ([0-9a-f]{16})/i.exec(out)?.[1]?.toLowerCase();
}
