// `--mirror` of nightly and promote, the pure and local parts: where the list comes from (flags or
// OST_IMAGES_MIRROR), the checks made before anything is built (every problem at once, each naming
// --mirror and the value; a repository that does not exist yet), a destination read for the CI
// settings, and how the nightly report shows each mirror's outcome.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mirrorsGiven } from '../../src/commands/common.js';
import { UsageError } from '../../src/core/errors.js';
import { renderReport, type NightlyReport } from '../../src/jobs/nightly.js';
import { MIRROR_MARKER, checkMirrorDestinations, describeOutcome } from '../../src/mirror/mirror.js';
import type { PublishResult } from '../../src/publish/publish.js';
import { readDestination } from '../../src/tools/rsync.js';
import { testTmp } from '../helpers/tmp.js';

const root = testTmp('mirror-after-publish');

describe('the list of mirrors', () => {
  it('--mirror as given, in order; else OST_IMAGES_MIRROR split at white space; else none', () => {
    expect(mirrorsGiven(['/a', 'rsync://h/m'], '/env')).toEqual(['/a', 'rsync://h/m']);
    expect(mirrorsGiven(undefined, ' /a \trsync://h/m/x\n')).toEqual(['/a', 'rsync://h/m/x']);
    // The pipeline writes every variable it sets; an empty one is none.
    expect(mirrorsGiven(undefined, '')).toEqual([]);
    expect(mirrorsGiven(undefined, undefined)).toEqual([]);
    // An empty flag is a value, refused by the check below, not silently nothing.
    expect(mirrorsGiven([''], '/env')).toEqual(['']);
  });
});

describe('checking the mirrors before anything is built', () => {
  const repo = path.join(root, 'repo');

  it('none given: nothing to check (the repository need not exist yet)', () => {
    expect(checkMirrorDestinations(path.join(root, 'no-repo-yet'), [])).toEqual([]);
  });

  it('valid ones, as the report names them: a local one made absolute; the repository need not exist yet', () => {
    const rel = path.relative(process.cwd(), path.join(root, 'm-rel'));
    expect(checkMirrorDestinations(path.join(root, 'no-repo-yet'), [path.join(root, 'm1'), rel, 'rsync://127.0.0.1:8873/mod/ost/', 'web1:/srv/ost'])).toEqual([
      path.join(root, 'm1'),
      path.join(root, 'm-rel'),
      'rsync://127.0.0.1:8873/mod/ost',
      'web1:/srv/ost',
    ]);
  });

  it('a mirror an earlier push marked and an empty directory are fine; a busy directory, one that merely looks like a mirror, or a file is not', () => {
    const mirror = path.join(root, 'old-mirror');
    mkdirSync(path.join(mirror, 'packages'), { recursive: true });
    writeFileSync(path.join(mirror, MIRROR_MARKER), '');
    const empty = path.join(root, 'empty');
    mkdirSync(empty);
    expect(checkMirrorDestinations(repo, [mirror, empty])).toEqual([mirror, empty]);
    const busy = path.join(root, 'busy');
    mkdirSync(busy);
    writeFileSync(path.join(busy, 'precious.txt'), 'mine');
    // Issue 18: a JavaScript checkout has packages/ too; it was taken for a mirror and emptied.
    const lookalike = path.join(root, 'monorepo');
    mkdirSync(path.join(lookalike, 'packages', 'app'), { recursive: true });
    mkdirSync(path.join(lookalike, 'src'));
    writeFileSync(path.join(lookalike, 'packages', 'app', 'package.json'), '{}');
    writeFileSync(path.join(lookalike, 'README.md'), '# mine');
    writeFileSync(path.join(lookalike, 'src', 'main.ts'), '');
    const file = path.join(root, 'a-file');
    writeFileSync(file, 'x');
    const refusal = (dir: string, holds: string) =>
      `--mirror: '${dir}' is neither empty nor a mirror an earlier \`ost-images mirror\` wrote (it has no .ost-images-mirror file): it holds ${holds}, which mirroring would delete. ` +
      'Give an empty or new directory (a mirror made before ost-images wrote the marker: create an empty .ost-images-mirror in it)';
    expect(() => checkMirrorDestinations(repo, [busy])).toThrow(refusal(busy, "'precious.txt'"));
    expect(() => checkMirrorDestinations(repo, [lookalike])).toThrow(refusal(lookalike, "'README.md', 'packages', 'src'"));
    expect(() => checkMirrorDestinations(repo, [file])).toThrow(`--mirror: '${file}' exists and is not a directory`);
  });

  it('every problem at once, each naming --mirror and its value (UsageError: exit 2)', () => {
    const given = ['rsync://host', path.join(repo, 'inside'), root, '/srv/m', '/srv/m/', 'rsync://h:0/m', 'a\nb'];
    let err: unknown;
    try {
      checkMirrorDestinations(repo, given);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message.split('\n')).toEqual([
      "--mirror: 'rsync://host' is not rsync://host[:port]/module[/path]",
      `--mirror: '${path.join(repo, 'inside')}' is inside the source repository ${repo}`,
      `--mirror: '${root}' contains the source repository ${repo}; mirroring would delete it`,
      "--mirror: '/srv/m/' is given twice",
      "--mirror: 'rsync://h:0/m' has port 0, not 1-65535",
      "--mirror: 'a\\nb' holds a control character",
    ]);
  });
});

describe('a destination read without throwing (the CI settings report problems their own way)', () => {
  it('the destination, or the words that say why not', () => {
    expect(readDestination('rsync://m/ost/x')).toEqual({ kind: 'daemon', host: 'm', port: undefined, module: 'ost', path: 'x' });
    expect(readDestination('/srv/m')).toEqual({ kind: 'local', path: '/srv/m' });
    expect(readDestination('')).toBe('is empty');
    expect(readDestination('host::m')).toBe('uses the host::module form; write it rsync://host/module/path');
  });
});

describe('the nightly report', () => {
  const published: PublishResult = {
    repo: '/srv/repo', snapshot: '20261130020000', previous: '20261129020000', changed: false, dryRun: false,
    added: [], removed: [], resigned: [], packages: 4, packagesRead: 0, seconds: 0.2,
  };
  const report = (over: Partial<NightlyReport>): NightlyReport => ({
    schema: 1, set: 'tiny', started: '2026-11-30T02:00:00.000Z', finished: '2026-11-30T02:03:00.000Z', ok: true,
    upstream: {}, layers: [], boots: [], published, mirrors: [], stages: { publish: 0.2, mirror: 1.5 }, ...over,
  });

  it('one line per mirror after what was published; a failed one says FAILED and its first line', () => {
    const ok = { dest: '/srv/m1', ok: true, snapshot: '20261130020000', files: 3, bytes: 4096, deleted: 1, seconds: 0.84 };
    const bad = { dest: '/srv/ro', ok: false, seconds: 0.1, error: 'mirror /srv/ro: rsync exited with code 23: rsync -a ...\n--- last lines of its output ---\nrsync: Read-only file system (30)' };
    const text = renderReport(report({
      ok: false,
      failed: { stage: 'mirror', exitCode: 1, error: '1 of 2 mirror(s) failed (/srv/ro); production was published (snapshot 20261130020000) and stays published\nmirror /srv/ro: ...' },
      mirrors: [bad, ok],
    }));
    expect(text.split('\n').slice(0, 5)).toEqual([
      'ost-images nightly, set tiny: FAILED at mirror (2026-11-30T02:00:00.000Z .. 2026-11-30T02:03:00.000Z)',
      '  error: 1 of 2 mirror(s) failed (/srv/ro); production was published (snapshot 20261130020000) and stays published',
      '  published: snapshot 20261130020000 of /srv/repo: 0 new, 0 removed, 4 in all, unsigned (nothing new)',
      '  mirror /srv/ro: FAILED: rsync exited with code 23: rsync -a ...',
      '  mirror /srv/m1: serving snapshot 20261130020000; sent 3 file(s), 4096 byte(s), deleted 1, in 0.8 s',
    ]);
    expect(text).toContain('  stages: publish 0.2 s, mirror 1.5 s\n');
    expect(describeOutcome(ok)).toBe('mirror /srv/m1: serving snapshot 20261130020000; sent 3 file(s), 4096 byte(s), deleted 1, in 0.8 s');
  });

  it('without mirrors, the report reads as it always did', () => {
    const text = renderReport(report({ stages: { publish: 0.2 } }));
    expect(text).not.toContain('mirror');
  });
});
