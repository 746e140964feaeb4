// RPM dependency vocabulary shared by the publish stage (closure check, retention) and test
// machines (removing old builds): parsing "name op evr" strings as `rpm --qf` prints them,
// comparing versions the way rpm does, and resolving Requires against Provides. Implemented here
// instead of asking dnf because publishing must judge a snapshot nobody serves yet, in milliseconds.

export type DepOp = '=' | '<' | '>' | '<=' | '>=';

export interface Dep {
  name: string;
  op?: DepOp;
  evr?: string;
}

/** What publish and retention know of a package: its identity and dependency lists. */
export interface PackageDeps {
  name: string;
  version: string;
  release: string;
  provides: string[];
  requires: string[];
}

export function parseDep(s: string): Dep {
  const [name, op, evr] = s.trim().split(/\s+/);
  if (op && evr && ['=', '<', '>', '<=', '>='].includes(op)) return { name: name!, op: op as DepOp, evr };
  return { name: name! };
}

/**
 * rpm's rpmvercmp: segments of digits or letters, compared numerically or lexically; a digit
 * segment is newer than a letter one; `~` sorts before everything (pre-releases), `^` after the
 * base version but before anything else appended.
 */
export function rpmvercmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  const isAlnum = (c: string | undefined) => c !== undefined && /[A-Za-z0-9]/.test(c);
  for (;;) {
    while (i < a.length && !isAlnum(a[i]) && a[i] !== '~' && a[i] !== '^') i++;
    while (j < b.length && !isAlnum(b[j]) && b[j] !== '~' && b[j] !== '^') j++;
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++;
      j++;
      continue;
    }
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (i >= a.length || j >= b.length) break;
    const numeric = /[0-9]/.test(a[i]!);
    const re = numeric ? /^[0-9]+/ : /^[A-Za-z]+/;
    const sa = re.exec(a.slice(i))?.[0] ?? '';
    const sb = re.exec(b.slice(j))?.[0] ?? '';
    if (sb === '') return numeric ? 1 : -1; // Different segment kinds: digits win.
    i += sa.length;
    j += sb.length;
    if (numeric) {
      const na = sa.replace(/^0+/, '');
      const nb = sb.replace(/^0+/, '');
      if (na.length !== nb.length) return na.length > nb.length ? 1 : -1;
      if (na !== nb) return na > nb ? 1 : -1;
    } else if (sa !== sb) {
      return sa > sb ? 1 : -1;
    }
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

interface Evr {
  epoch: number;
  version: string;
  release?: string;
}

function parseEvr(s: string): Evr {
  const colon = s.indexOf(':');
  const epoch = colon > 0 ? Number(s.slice(0, colon)) : 0;
  const rest = colon > 0 ? s.slice(colon + 1) : s;
  const dash = rest.lastIndexOf('-');
  return dash >= 0 ? { epoch, version: rest.slice(0, dash), release: rest.slice(dash + 1) } : { epoch, version: rest };
}

/**
 * Compares two EVRs; a release missing on either side is not compared (as rpm does when matching
 * dependencies; rpm's ordering of installed versions would rank `1.0-1` above `1.0`).
 */
export function compareEvr(a: string, b: string): number {
  const x = parseEvr(a);
  const y = parseEvr(b);
  if (x.epoch !== y.epoch) return x.epoch > y.epoch ? 1 : -1;
  const v = rpmvercmp(x.version, y.version);
  if (v !== 0 || x.release === undefined || y.release === undefined) return v;
  return rpmvercmp(x.release, y.release);
}

export function evrOf(p: { version: string; release: string }): string {
  return `${p.version}-${p.release}`;
}

/** Newest first, by version-release. */
export function newestFirst<T extends { version: string; release: string }>(a: T, b: T): number {
  return compareEvr(evrOf(b), evrOf(a));
}

function opHolds(op: DepOp, cmp: number): boolean {
  switch (op) {
    case '=':
      return cmp === 0;
    case '<':
      return cmp < 0;
    case '>':
      return cmp > 0;
    case '<=':
      return cmp <= 0;
    case '>=':
      return cmp >= 0;
  }
}

/** Does a Provides entry satisfy a Requires entry? An unversioned side matches any version (rpm). */
export function satisfies(provide: Dep, require: Dep): boolean {
  if (provide.name !== require.name) return false;
  if (!require.op || !require.evr || !provide.evr) return true;
  // The provided EVR must fall in the required range; with "=" on the provide side (ours always).
  // A provide without a release stands for every release of its version, so it overlaps any range
  // around that version (rpm: `foo = 12` satisfies `foo > 12-5`; `foo = 12-5` not `foo < 12`).
  const cmp = compareEvr(provide.evr, require.evr);
  if (cmp === 0 && !provide.evr.includes('-')) return true;
  return opHolds(require.op, cmp);
}

/** Requires satisfied by rpm itself, not by a package. */
export function isRpmInternal(dep: string): boolean {
  return dep.startsWith('rpmlib(') || dep.startsWith('rpmlib (');
}

/** An index of the Provides of a set of packages, to resolve Requires quickly. */
export class ProvidesIndex<P extends PackageDeps> {
  private readonly byName = new Map<string, { pkg: P; dep: Dep }[]>();

  constructor(packages: Iterable<P>) {
    for (const pkg of packages) {
      const provides = [...pkg.provides];
      // A package always provides its own name at its own EVR, whether or not the header lists it.
      provides.push(`${pkg.name} = ${evrOf(pkg)}`);
      for (const p of provides) {
        const dep = parseDep(p);
        const list = this.byName.get(dep.name) ?? [];
        list.push({ pkg, dep });
        this.byName.set(dep.name, list);
      }
    }
  }

  /** Packages that satisfy `require`, newest first, each once. */
  providers(require: string): P[] {
    const req = parseDep(require);
    const found = new Set<P>();
    for (const { pkg, dep } of this.byName.get(req.name) ?? []) if (satisfies(dep, req)) found.add(pkg);
    return [...found].sort(newestFirst);
  }
}

export interface Unresolved<P> {
  pkg: P;
  require: string;
}

/** Every Requires of every package that no package of the same set provides. */
export function unresolvedRequires<P extends PackageDeps>(packages: P[]): Unresolved<P>[] {
  const index = new ProvidesIndex(packages);
  const out: Unresolved<P>[] = [];
  for (const pkg of packages) {
    for (const r of pkg.requires) {
      if (isRpmInternal(r)) continue;
      if (index.providers(r).length === 0) out.push({ pkg, require: r });
    }
  }
  return out;
}
