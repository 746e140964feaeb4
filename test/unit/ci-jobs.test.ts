// The pure parts of the pipeline's jobs: where the repositories are, run ids, what a set's
// promotion waits for, and the upload command's argv.
import { describe, expect, it } from 'vitest';
import { PRODUCTION, STAGING, given, repoLocation, runId } from '../../src/ci/locations.js';
import { bootTarget } from '../../src/jobs/ci.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import { UsageError } from '../../src/core/errors.js';
import { gateTargets } from '../../src/jobs/promote.js';
import { uploadArgs } from '../../src/tools/upload.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';

describe('job locations', () => {
  it('a flag overrides its variable; empty is unset (the pipeline writes every variable)', () => {
    expect(given('/a', '/b')).toBe('/a');
    expect(given(undefined, '/b')).toBe('/b');
    expect(given(undefined, '')).toBeUndefined();
    expect(given('', '/b')).toBeUndefined();
  });

  it("a repository's URL defaults to its directory's file:// URL", () => {
    expect(repoLocation('/srv/staging', undefined, STAGING)).toEqual({ dir: '/srv/staging', url: 'file:///srv/staging' });
    expect(repoLocation(undefined, 'https://ci.example.org/staging/', STAGING)).toEqual({ dir: undefined, url: 'https://ci.example.org/staging/' });
  });

  it.each<[string, string | undefined, string | undefined, string]>([
    ['neither', undefined, undefined, 'the production repository: give its directory (--repo or OST_IMAGES_REPO) or its URL (--repo-url or OST_IMAGES_REPO_URL)'],
    ['an ftp URL', '/srv/repo', 'ftp://host/repo', "--repo-url: 'ftp://host/repo' is not a usable URL: only http://, https:// and file:// URLs are supported"],
    ['a URL with a password', undefined, 'https://u:p@host/repo', 'a user name or password in a URL'],
  ])('refuses %s', (_what, dir, url, message) => {
    expect(() => repoLocation(dir, url, PRODUCTION)).toThrow(UsageError);
    expect(() => repoLocation(dir, url, PRODUCTION)).toThrow(message);
  });

  it.each(['1234567', 'nightly-2026.11.29', 'r_1'])('accepts run id %s', (id) => expect(runId(id)).toBe(id));
  it.each(['', '../x', '.hidden', 'a/b', 'a b', 'x'.repeat(129)])('refuses run id %j', (id) => expect(() => runId(id === '' ? undefined : id)).toThrow(UsageError));
});

describe('what a set promotion waits for', () => {
  const ls = loadLayerSet(writeLayerSet(demoSet({ isDefault: true, extraSetKeys: 'flatten: [engine-installed, upgrade]' })).layersDir, 'demo');

  it('a gate record for every top layer and every flattened variant', () => {
    expect(gateTargets(ls)).toEqual(['engine-installed', 'host-installed', 'engine-installed-flat', 'upgrade-flat']);
  });

  it('boot targets: a layer, or the flattened variant of a flattened layer', () => {
    expect(bootTarget(ls, 'engine-installed')).toEqual({ layer: 'engine-installed', flat: false });
    expect(bootTarget(ls, 'upgrade-flat')).toEqual({ layer: 'upgrade', flat: true });
    expect(() => bootTarget(ls, 'host-installed-flat')).toThrow("set 'demo' has no layer 'host-installed-flat'");
  });
});

describe('the upload command', () => {
  it('that names the files itself gets them as positional parameters, nothing appended', () => {
    expect(uploadArgs('rsync -t "$@" staging:/in/', ['/s/a.rpm'])).toEqual(['-c', 'rsync -t "$@" staging:/in/', 'ost-images-upload', '/s/a.rpm']);
    expect(uploadArgs('scp "${1}" staging:/in/ && ssh staging publish "$(basename "$1")"', ['/s/a.rpm'])[1]).toBe('scp "${1}" staging:/in/ && ssh staging publish "$(basename "$1")"');
  });

  it('is the site\'s shell text with the files as "$@", never spliced into it', () => {
    expect(uploadArgs('/usr/local/bin/stage-upload --host staging', ['/s/a.rpm', '/s/b; rm -rf ~.rpm'])).toEqual([
      '-c', '/usr/local/bin/stage-upload --host staging "$@"', 'ost-images-upload', '/s/a.rpm', '/s/b; rm -rf ~.rpm',
    ]);
  });
});
