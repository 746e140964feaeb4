// The publish planner (src/publish/plan.ts), as tables: from the served snapshot's index, the
// incoming packages' headers and the options, what a publish would do. No repository, no rpm, no
// clock: the planner is pure, so every decision publish, prune, prune-by-use and --dry-run take is
// checked here on plain values. (What applying a plan does is the integration tests' part.)
import { describe, expect, it } from 'vitest';
import { ConfigError, UsageError } from '../../src/core/errors.js';
import { nvr, type UsedWithin } from '../../src/plan/retention.js';
import { planPublish, refusalError, signingRefusal, type IncomingPackage, type PlanOptions, type PublishPlan } from '../../src/publish/plan.js';
import { describePlan } from '../../src/publish/plan-text.js';
import type { PackageEntry, SnapshotRecord } from '../../src/repository/snapshot.js';

const REPO = '/srv/repo';
const KEY_OLD = 'AAAA1111AAAA1111AAAA1111AAAA1111AAAA1111';
const KEY_NEW = 'BBBB2222BBBB2222BBBB2222BBBB2222BBBB2222';
const KEY_NEW_SUB = 'CCCC3333CCCC3333CCCC3333CCCC3333CCCC3333';
const NOW = new Date('2026-12-01T12:00:00Z');

/** A layer package as spec.ts makes it: its layer Provides, the short name for a default set, an exact Requires of its parent. */
function pkg(set: string, layer: string, release: string, parent?: PackageEntry, o: { short?: boolean; signedBy?: string } = {}): PackageEntry {
  const name = `ost-images-${set}-${layer}`;
  const vr = `12-${release}`;
  const provides = [`ost-images-layer(${set}/${layer}) = ${vr}`, 'installonlypkg(vm)'];
  if (o.short) provides.unshift(`ost-images-${layer} = ${vr}`);
  const p: PackageEntry = { file: `${name}-${vr}.noarch.rpm`, name, version: '12', release, provides, requires: parent ? [`${parent.name} = 12-${parent.release}`] : [], size: 1000 };
  if (o.signedBy) p.signedBy = o.signedBy;
  return p;
}
const signed = (p: PackageEntry, by: string): PackageEntry => ({ ...p, signedBy: by });
const incoming = (...ps: PackageEntry[]): IncomingPackage[] => ps.map((p) => ({ ...p, source: `/store/rpms/${p.file}` }));
function served(packages: PackageEntry[], signedBy?: string): SnapshotRecord {
  return { schema: 1, stamp: '20261130020000', created: '2026-11-30T02:00:00Z', previous: '20261129020000', signedBy, added: [], removed: [], packages };
}
function used(entries: [PackageEntry, number][], withinDays: number): UsedWithin {
  return {
    usage: new Map(entries.map(([p, daysAgo]) => [nvr(p), { downloads: 1, lastDownloaded: new Date(NOW.getTime() - daysAgo * 86_400_000).toISOString().replace('.000Z', 'Z') }])),
    withinDays,
    now: NOW,
  };
}

// Set demo (the default set: short names): base -> upgrade -> {engine, host}. Night 2 rebuilt
// upgrade and everything above it; night 3 only got upgrade published (nothing requires it).
const base1 = pkg('demo', 'base', '20261101000000', undefined, { short: true });
const up1 = pkg('demo', 'upgrade', '20261101000100', base1, { short: true });
const eng1 = pkg('demo', 'engine', '20261101000200', up1, { short: true });
const host1 = pkg('demo', 'host', '20261101000300', up1, { short: true });
const up2 = pkg('demo', 'upgrade', '20261102000100', base1, { short: true });
const eng2 = pkg('demo', 'engine', '20261102000200', up2, { short: true });
const host2 = pkg('demo', 'host', '20261102000300', up2, { short: true });
const up3 = pkg('demo', 'upgrade', '20261103000100', base1, { short: true });
const eng3 = pkg('demo', 'engine', '20261103000200', up3, { short: true });
// Another set that also calls itself the default, and one that does not.
const otherBase = pkg('el9', 'base', '20261101000000', undefined, { short: true });
const quietBase = pkg('el8', 'base', '20261101000000');

const LABELS = new Map(
  Object.entries({ base1, up1, eng1, host1, up2, eng2, host2, up3, eng3, otherBase, quietBase }).map(([k, p]) => [p.file, k]),
);
const label = (file: string) => LABELS.get(file) ?? file;

/** What a row checks: every decision, by package label. */
function digest(p: PublishPlan) {
  return {
    refused: p.refusals.map((r) => r.kind),
    changed: p.changes.changed,
    why: p.changes.why,
    added: p.changes.added.map(label),
    removed: p.changes.removed.map(label),
    sign: p.signing.sign.map(label),
    resign: p.signing.resign.map(label),
    kept: p.retention?.kept.map((k) => `${label(k.file)} ${k.rules.map((r) => r.rule).join('+')}`),
    unresolved: p.closure.unresolved.map((u) => `${label(u.file)} needs ${u.require}`),
    snapshot: p.snapshot.map((e) => label(e.file)),
  };
}

interface Row {
  name: string;
  served?: SnapshotRecord;
  incoming?: IncomingPackage[];
  opts?: PlanOptions;
  want: ReturnType<typeof digest>;
}

const chains = [base1, up1, eng1, host1, up2, eng2, host2];
const none = { refused: [], sign: [], resign: [], kept: undefined, unresolved: [] };

const TABLE: Row[] = [
  {
    name: 'incoming only: the first publish lists what is offered, in order',
    incoming: incoming(base1, up1, eng1, host1),
    want: { ...none, changed: true, why: ['the first snapshot', '4 new package(s)'], added: ['base1', 'up1', 'eng1', 'host1'], removed: [], snapshot: ['base1', 'up1', 'eng1', 'host1'] },
  },
  {
    name: 'incoming only: a new chain on top of the served one; served packages first',
    served: served([base1, up1, eng1, host1]),
    incoming: incoming(up2, eng2, host2),
    want: { ...none, changed: true, why: ['3 new package(s)'], added: ['up2', 'eng2', 'host2'], removed: [], snapshot: ['base1', 'up1', 'eng1', 'host1', 'up2', 'eng2', 'host2'] },
  },
  {
    name: 'a conflict: two sets claiming one short name are refused',
    served: served([base1, up1]),
    incoming: incoming(otherBase),
    want: { ...none, refused: ['short-name-conflict'], changed: true, why: ['1 new package(s)'], added: ['otherBase'], removed: [], snapshot: ['base1', 'up1', 'otherBase'] },
  },
  {
    name: 'no conflict: a second set without short names beside the default one',
    served: served([base1, up1]),
    incoming: incoming(quietBase),
    want: { ...none, changed: true, why: ['1 new package(s)'], added: ['quietBase'], removed: [], snapshot: ['base1', 'up1', 'quietBase'] },
  },
  {
    name: 'an unresolved Requires: an engine build whose upgrade build is not there',
    served: served([base1, up1, eng1]),
    incoming: incoming(eng3),
    want: { ...none, refused: ['unresolved-requires'], changed: true, why: ['1 new package(s)'], added: ['eng3'], removed: [], unresolved: [`eng3 needs ${up3.name} = 12-${up3.release}`], snapshot: ['base1', 'up1', 'eng1', 'eng3'] },
  },
  {
    name: 'retention by count, keep 1: the newest top builds with their whole chains; nothing half',
    served: served(chains),
    opts: { keep: 1 },
    want: {
      ...none, changed: true, why: ['3 removed by retention'], added: [], removed: ['up1', 'eng1', 'host1'],
      kept: ['base1 required', 'up2 required', 'eng2 newest', 'host2 newest'], snapshot: ['base1', 'up2', 'eng2', 'host2'],
    },
  },
  {
    name: 'retention by count, keep 2: the old chain is kept whole, upgrade and base included',
    served: served(chains),
    opts: { keep: 2 },
    want: {
      ...none, changed: false, why: [], added: [], removed: [],
      kept: ['base1 required', 'up1 required', 'eng1 newest', 'host1 newest', 'up2 required', 'eng2 newest', 'host2 newest'], snapshot: ['base1', 'up1', 'eng1', 'host1', 'up2', 'eng2', 'host2'],
    },
  },
  {
    name: 'retention with incoming: what is being published is kept, even a build nothing requires',
    served: served(chains),
    incoming: incoming(up3),
    opts: { keep: 1 },
    want: {
      ...none, changed: true, why: ['1 new package(s)', '3 removed by retention'], added: ['up3'], removed: ['up1', 'eng1', 'host1'],
      kept: ['base1 required', 'up2 required', 'eng2 newest', 'host2 newest', 'up3 pinned'], snapshot: ['base1', 'up2', 'eng2', 'host2', 'up3'],
    },
  },
  {
    name: 'retention by use: an old engine build downloaded 2 days ago stays with its chain; an old host build unused for 30 goes',
    served: served(chains),
    opts: { keep: 1, used: used([[eng1, 2], [host1, 30]], 7) },
    want: {
      ...none, changed: true, why: ['1 removed by retention'], added: [], removed: ['host1'],
      kept: ['base1 required', 'up1 required', 'eng1 used', 'up2 required', 'eng2 newest', 'host2 newest'], snapshot: ['base1', 'up1', 'eng1', 'up2', 'eng2', 'host2'],
    },
  },
  {
    name: 'retention by use: a newest build that is also downloaded has both rules',
    served: served(chains),
    opts: { keep: 1, used: used([[eng2, 0]], 7) },
    want: {
      ...none, changed: true, why: ['3 removed by retention'], added: [], removed: ['up1', 'eng1', 'host1'],
      kept: ['base1 required', 'up2 required', 'eng2 newest+used', 'host2 newest'], snapshot: ['base1', 'up2', 'eng2', 'host2'],
    },
  },
  {
    name: 'a pin from the caller (staging trimmed by promote) keeps a build and its chain',
    served: served(chains),
    opts: { keep: 1, pin: (p) => p === eng1 },
    want: {
      ...none, changed: true, why: ['1 removed by retention'], added: [], removed: ['host1'],
      kept: ['base1 required', 'up1 required', 'eng1 pinned', 'up2 required', 'eng2 newest', 'host2 newest'], snapshot: ['base1', 'up1', 'eng1', 'up2', 'eng2', 'host2'],
    },
  },
  {
    name: 're-signing on a key change: every served package is signed again with the new key',
    served: served([base1, up1].map((p) => signed(p, KEY_OLD)), KEY_OLD),
    incoming: incoming(eng1),
    opts: { fingerprints: [KEY_NEW, KEY_NEW_SUB] },
    want: {
      ...none, changed: true, why: ['1 new package(s)', `3 package(s) to sign with ${KEY_NEW}`], added: ['eng1'], removed: [],
      sign: ['base1', 'up1', 'eng1'], resign: ['base1', 'up1'], snapshot: ['base1', 'up1', 'eng1'],
    },
  },
  {
    name: 'the same key: only the new package is signed',
    served: served([base1, up1].map((p) => signed(p, KEY_NEW)), KEY_NEW),
    incoming: incoming(eng1),
    opts: { fingerprints: [KEY_NEW] },
    want: { ...none, changed: true, why: ['1 new package(s)', `1 package(s) to sign with ${KEY_NEW}`], added: ['eng1'], removed: [], sign: ['eng1'], snapshot: ['base1', 'up1', 'eng1'] },
  },
  {
    name: 'a signed repository and no key: refused',
    served: served([base1].map((p) => signed(p, KEY_OLD)), KEY_OLD),
    incoming: incoming(up1),
    want: { ...none, refused: ['signed-repository'], changed: true, why: ['1 new package(s)', `stops signing (the served snapshot is signed by ${KEY_OLD})`], added: ['up1'], removed: [], snapshot: ['base1', 'up1'] },
  },
  {
    name: 'a signed repository, no key, --unsigned: a new unsigned snapshot even with nothing new',
    served: served([base1].map((p) => signed(p, KEY_OLD)), KEY_OLD),
    opts: { unsigned: true },
    want: { ...none, changed: true, why: [`stops signing (the served snapshot is signed by ${KEY_OLD})`], added: [], removed: [], snapshot: ['base1'] },
  },
  {
    name: 'nothing to do: everything offered is served already (the reader leaves no incoming)',
    served: served([base1, up1, eng1]),
    want: { ...none, changed: false, why: [], added: [], removed: [], snapshot: ['base1', 'up1', 'eng1'] },
  },
  {
    name: 'nothing to do, signed: the served snapshot is signed by the key given',
    served: served([base1, up1].map((p) => signed(p, KEY_NEW)), KEY_NEW),
    opts: { fingerprints: [KEY_NEW] },
    want: { ...none, changed: false, why: [], added: [], removed: [], snapshot: ['base1', 'up1'] },
  },
];

describe('planPublish, as a table', () => {
  it.each(TABLE)('$name', (row) => {
    const inputs = { repo: REPO, served: row.served, incoming: row.incoming ?? [] };
    const before = JSON.stringify(inputs);
    const plan = planPublish(inputs, row.opts);
    expect(digest(plan)).toEqual(row.want);
    // Pure: the inputs are as they were, and the same inputs give the same plan.
    expect(JSON.stringify(inputs)).toBe(before);
    expect(planPublish(inputs, row.opts)).toEqual(plan);
    // The closure is always judged on exactly what the new snapshot would list.
    expect(plan.closure.packages).toBe(plan.snapshot.length);
    // A plan is plain data: it survives JSON (--dry-run --json, a plan written down and read back).
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
  });
});

describe('planPublish, in detail', () => {
  it('names the served snapshot and where every incoming package comes from; the index carries no source', () => {
    const plan = planPublish({ repo: REPO, served: served([base1]), incoming: incoming(up1) });
    expect(plan.served).toEqual({ stamp: '20261130020000', previous: '20261129020000', signedBy: undefined, packages: 1 });
    expect(plan.incoming).toEqual([{ file: up1.file, nvr: nvr(up1), source: `/store/rpms/${up1.file}` }]);
    expect(plan.snapshot).toEqual([base1, up1]);
    expect(plan.snapshot[1]).not.toHaveProperty('source');
  });

  it('a short-name conflict names both sets and both files (the served one in the pool, the incoming one where it is), as bad input', () => {
    const plan = planPublish({ repo: REPO, served: served([base1]), incoming: incoming(otherBase) });
    expect(plan.refusals).toEqual([
      {
        kind: 'short-name-conflict',
        message: `refusing to publish into ${REPO}`,
        issues: [{ file: `${REPO}/packages/${base1.file}`, path: 'Provides', message: `'ost-images-base' is provided by more than one set: demo (${base1.file}), el9 (${otherBase.file}); mark only one set 'package.default: true' per repository` }],
      },
    ]);
    const err = refusalError(plan.refusals[0]!);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.exitCode).toBe(2);
  });

  it('an unresolved Requires names the package, the Requires and the file it comes from', () => {
    const plan = planPublish({ repo: REPO, served: served([base1, up1, eng1]), incoming: incoming(eng3) });
    expect(plan.refusals).toEqual([
      {
        kind: 'unresolved-requires',
        message: `refusing to publish into ${REPO}: unresolved dependencies (nothing was changed)`,
        issues: [{ file: `/store/rpms/${eng3.file}`, path: 'Requires', message: `'${up3.name} = 12-${up3.release}' of ${nvr(eng3)} is provided by no package of the new snapshot` }],
      },
    ]);
    expect(refusalError(plan.refusals[0]!).message).toContain(`/store/rpms/${eng3.file}: Requires: '${up3.name} = 12-${up3.release}' of ${nvr(eng3)}`);
  });

  it('refusals come in the order publish checks them: signing, short names, closure', () => {
    const plan = planPublish({ repo: REPO, served: served([signed(base1, KEY_OLD)], KEY_OLD), incoming: incoming(otherBase, eng3) });
    expect(plan.refusals.map((r) => r.kind)).toEqual(['signed-repository', 'short-name-conflict', 'unresolved-requires']);
    const err = refusalError(plan.refusals[0]!);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe(
      `repository ${REPO} is signed (key ${KEY_OLD}); an unsigned snapshot would be refused by every client with repo_gpgcheck=1: pass --sign-key, or --unsigned to stop signing deliberately`,
    );
    // The same check, on its own, before any header is read.
    expect(signingRefusal(REPO, served([], KEY_OLD), [], false)).toEqual(plan.refusals[0]);
    expect(signingRefusal(REPO, served([], KEY_OLD), [], true)).toBeUndefined();
    expect(signingRefusal(REPO, served([], KEY_OLD), [KEY_NEW], false)).toBeUndefined();
    expect(signingRefusal(REPO, undefined, [], false)).toBeUndefined();
  });

  it('retention says which rule keeps what, and what a removed build was last downloaded', () => {
    const plan = planPublish({ repo: REPO, served: served(chains), incoming: incoming(up3) }, { keep: 1, used: used([[eng1, 2], [host1, 30]], 7) });
    expect(plan.retention!.keep).toBe(1);
    expect(plan.retention!.usedWithinDays).toBe(7);
    const rules = Object.fromEntries(plan.retention!.kept.map((k) => [label(k.file), k.rules]));
    expect(rules.eng1).toEqual([{ rule: 'used', reason: 'downloaded 1 time, last 2026-11-29T12:00:00Z (2 days ago, within 7)' }]);
    expect(rules.up1).toEqual([{ rule: 'required', reason: `required by ${nvr(eng1)}` }]);
    expect(rules.eng2).toEqual([{ rule: 'newest', reason: `one of the 1 newest builds of ${eng2.name}` }]);
    expect(rules.up3).toEqual([{ rule: 'pinned', reason: 'being published' }]);
    expect(plan.retention!.removed).toEqual([{ file: host1.file, nvr: nvr(host1), downloads: 1, lastDownloaded: '2026-11-01T12:00:00Z' }]);
  });

  it('without --keep there is no retention: nothing is removed, every build stays', () => {
    const plan = planPublish({ repo: REPO, served: served(chains), incoming: [] }, { used: used([[eng1, 2]], 7) });
    expect(plan.retention).toBeUndefined();
    expect(plan.changes.removed).toEqual([]);
  });

  it('signing: the key and all its fingerprints, for apply to check what rpmsign wrote', () => {
    const plan = planPublish({ repo: REPO, served: served([signed(base1, KEY_OLD)], KEY_OLD), incoming: [] }, { fingerprints: [KEY_NEW, KEY_NEW_SUB] });
    expect(plan.signing).toEqual({ key: KEY_NEW, fingerprints: [KEY_NEW, KEY_NEW_SUB], sign: [base1.file], resign: [base1.file], drops: undefined });
    expect(plan.changes.resigned).toEqual([base1.file]);
  });
});

describe('the plan for people (what --dry-run prints)', () => {
  it('says what changes, why each build stays or goes, the closure and the signing', () => {
    const plan = planPublish({ repo: REPO, served: served(chains), incoming: incoming(up3) }, { keep: 1, used: used([[eng1, 2]], 7) });
    expect(describePlan(plan)).toEqual([
      `plan for ${REPO}: serving snapshot 20261130020000 (7 package(s), unsigned)`,
      'a new snapshot of 7 package(s): 1 new package(s), 1 removed by retention',
      `  add     ${nvr(up3)}`,
      `  remove  ${nvr(host1)}: no download recorded`,
      'retention: keeps the 1 newest build(s) of every top-level package, every build downloaded within 7 day(s), what is being published or pinned, and everything they require',
      `  keep    ${nvr(base1)}: [required] required by ${nvr(up3)}`,
      `  keep    ${nvr(up1)}: [required] required by ${nvr(eng1)}`,
      `  keep    ${nvr(eng1)}: [used] downloaded 1 time, last 2026-11-29T12:00:00Z (2 days ago, within 7)`,
      `  keep    ${nvr(up2)}: [required] required by ${nvr(eng2)}`,
      `  keep    ${nvr(eng2)}: [newest] one of the 1 newest builds of ${eng2.name}`,
      `  keep    ${nvr(host2)}: [newest] one of the 1 newest builds of ${host2.name}`,
      `  keep    ${nvr(up3)}: [pinned] being published`,
      'closure: every Requires resolves within the 7 package(s) of the new snapshot',
      'signing: none (unsigned)',
    ]);
  });

  it('a key change lists every build to be re-signed', () => {
    const lines = describePlan(planPublish({ repo: REPO, served: served([signed(base1, KEY_OLD)], KEY_OLD), incoming: incoming(up1) }, { fingerprints: [KEY_NEW] }));
    expect(lines).toContain(`a new snapshot of 2 package(s): 1 new package(s), 2 package(s) to sign with ${KEY_NEW}`);
    expect(lines).toContain(`  re-sign ${nvr(base1)}`);
    expect(lines).toContain(`signing: 2 package(s) (1 of them served already: re-signed) and repomd.xml with key ${KEY_NEW}`);
  });

  it('a refused plan says why, and a plan with nothing to do says so', () => {
    const refused = describePlan(planPublish({ repo: REPO, served: served([base1, up1, eng1]), incoming: incoming(eng3) }));
    expect(refused).toContain(`refused: refusing to publish into ${REPO}: unresolved dependencies (nothing was changed)`);
    expect(refused).toContain(`closure: 1 Requires resolve to nothing`);
    expect(refused).toContain(`  ${nvr(eng3)} requires '${up3.name} = 12-${up3.release}'`);
    const idle = describePlan(planPublish({ repo: REPO, served: served([signed(base1, KEY_NEW)], KEY_NEW), incoming: [] }, { fingerprints: [KEY_NEW] }));
    expect(idle).toEqual([
      `plan for ${REPO}: serving snapshot 20261130020000 (1 package(s), signed by ${KEY_NEW})`,
      'nothing would change: the served snapshot stays',
      'closure: every Requires resolves within the 1 package(s) of the new snapshot',
      `signing: repomd.xml with key ${KEY_NEW} (every package is signed by it already)`,
    ]);
  });
});
