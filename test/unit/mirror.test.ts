// The mirror's pure parts: destination parsing (a table), rsync's argv (whole arrays), the filter
// rules of each phase, the order of the switch, and the parsers of rsync's output.
import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { UsageError } from '../../src/core/errors.js';
import { baseUrls, repeatedUrl } from '../../src/commands/common.js';
import { SOURCE_INTERNALS, phaseFilters, switchOrder } from '../../src/mirror/mirror.js';
import { renderRepoFile } from '../../src/repository/repo-file.js';
import { destinationArg, fileArgs, listArgs, parentDestination, parseDestination, parseItemized, parseStats, remoteShellEnv, transferArgs, type Destination } from '../../src/tools/rsync.js';

describe('parseDestination', () => {
  const ok: [string, Destination, string][] = [
    ['/srv/mirror', { kind: 'local', path: '/srv/mirror' }, '/srv/mirror/'],
    ['mirror/', { kind: 'local', path: 'mirror/' }, 'mirror/'],
    ['./a:b', { kind: 'local', path: './a:b' }, './a:b/'],
    ['rsync://m.example.org/ost', { kind: 'daemon', host: 'm.example.org', port: undefined, module: 'ost', path: '' }, 'rsync://m.example.org/ost/'],
    ['rsync://127.0.0.1:8873/mirror/a/b/', { kind: 'daemon', host: '127.0.0.1', port: 8873, module: 'mirror', path: 'a/b' }, 'rsync://127.0.0.1:8873/mirror/a/b/'],
    ['rsync://[::1]:873/m/x', { kind: 'daemon', host: '[::1]', port: 873, module: 'm', path: 'x' }, 'rsync://[::1]:873/m/x/'],
    ['web1:/srv/ost', { kind: 'ssh', host: 'web1', path: '/srv/ost' }, 'web1:/srv/ost/'],
    ['deploy@web1.example.org:ost', { kind: 'ssh', host: 'deploy@web1.example.org', path: 'ost' }, 'deploy@web1.example.org:ost/'],
  ];
  for (const [text, dest, arg] of ok) {
    it(`reads ${text}`, () => {
      expect(parseDestination(text)).toEqual(dest);
      expect(destinationArg(dest)).toBe(arg);
    });
  }
  const bad: [string, string][] = [
    ['', "--to: '' is empty"],
    ['rsync://host', "--to: 'rsync://host' is not rsync://host[:port]/module[/path]"],
    ['rsync://host:0/m', "--to: 'rsync://host:0/m' has port 0, not 1-65535"],
    ['rsync://host:70000/m', "--to: 'rsync://host:70000/m' has port 70000, not 1-65535"],
    ['rsync://ho st/m', "--to: 'rsync://ho st/m' names no valid host ('ho st')"],
    ['rsync://h/m/../etc', "--to: 'rsync://h/m/../etc' has '.' or '..' in its path"],
    ['host::module/x', "--to: 'host::module/x' uses the host::module form; write it rsync://host/module/path"],
    ['web1:', "--to: 'web1:' names no directory after the colon"],
    ['bad_host!:x', "--to: 'bad_host!:x' names no valid host ('bad_host!')"],
    ['a\nb', "--to: 'a\\nb' holds a control character"],
    // Issue 18: a password was repeated in the message (and CI logs keep it).
    ['rsync://mirror:s3cret@m.example.org/ost/x', "--to: 'rsync://mirror:***@m.example.org/ost/x' names a user or password; a mirror module is written without a login here (rsync://host[:port]/module/path)"],
    ['deploy:s3cret@web1:/srv/ost', "--to: 'deploy:***@web1:/srv/ost' holds a password (user:password@host:path); rsync over ssh logs in with a key: [user@]host:path"],
    // Issue 18: these became folders named '-v' or '--delete' under the working directory.
    ['-v', "--to: '-v' starts with '-', so a program would read it as an option; for a directory of that name write ./-v"],
    ['--delete', "--to: '--delete' starts with '-', so a program would read it as an option; for a directory of that name write ./--delete"],
  ];
  for (const [text, message] of bad) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      expect(() => parseDestination(text)).toThrow(UsageError);
      expect(() => parseDestination(text)).toThrow(message);
    });
  }
});

describe('rsync argv', () => {
  it('a transfer phase', () => {
    expect(transferArgs('/r', '/m/', { filters: ['+ /packages/***', '- *'] })).toEqual([
      '-a', '--hard-links', '--numeric-ids', '--timeout=600', '--stats', '--no-human-readable', '--out-format=%i %n%L',
      '--filter=+ /packages/***', '--filter=- *', '/r/', '/m/',
    ]);
  });
  it('the delete phase, with checksums, a bandwidth limit and the fault hook', () => {
    expect(transferArgs('/r/', 'rsync://h/m/', { filters: [], delete: true, checksum: true, progress: true, bwlimit: 4096 })).toEqual([
      '-a', '--hard-links', '--numeric-ids', '--timeout=600', '--stats', '--no-human-readable', '--out-format=%i %n%L',
      '--checksum', '--delete', '--progress', '--bwlimit=4096', '/r/', 'rsync://h/m/',
    ]);
  });
  it('--verify: a dry run by checksum, every name on its own', () => {
    expect(transferArgs('/r/', '/m/', { filters: ['-s /.lock'], delete: true, checksum: true, dryRun: true, hardLinks: false })).toEqual([
      '-a', '--numeric-ids', '--timeout=600', '--stats', '--no-human-readable', '--out-format=%i %n%L',
      '--checksum', '--delete', '--dry-run', '--filter=-s /.lock', '/r/', '/m/',
    ]);
  });
  it('the marker file alone into a destination (made when missing), over ssh with its remote shell', () => {
    expect(fileArgs('/t/.ost-images-mirror', '/m')).toEqual(['-a', '--numeric-ids', '--timeout=600', '/t/.ost-images-mirror', '/m/']);
    expect(fileArgs('/t/.ost-images-mirror', 'web1:/srv/ost/', 'ssh -p 2')).toEqual(['-a', '--numeric-ids', '--timeout=600', '--rsh=ssh -p 2', '/t/.ost-images-mirror', 'web1:/srv/ost/']);
  });
  it('listing a destination', () => {
    expect(listArgs('rsync://h/m/')).toEqual(['--list-only', '--no-human-readable', '--timeout=600', 'rsync://h/m/']);
  });
  it('over ssh with a remote shell of its own: one --rsh argument, split by rsync, not a shell', () => {
    const rsh = "ssh -p 2222 -i '/etc/ost images/key'";
    expect(transferArgs('/r/', 'web1:/srv/ost/', { filters: ['- *'], rsh })).toEqual([
      '-a', '--hard-links', '--numeric-ids', '--timeout=600', '--stats', '--no-human-readable', '--out-format=%i %n%L',
      `--rsh=${rsh}`, '--filter=- *', '/r/', 'web1:/srv/ost/',
    ]);
    expect(listArgs('web1:/srv/ost/', rsh)).toEqual(['--list-only', '--no-human-readable', '--timeout=600', `--rsh=${rsh}`, 'web1:/srv/ost/']);
  });
  it('what ssh gets from the environment: the agent, nothing else', () => {
    expect(remoteShellEnv({ SSH_AUTH_SOCK: '/run/agent.sock', RSYNC_RSH: 'ssh -p 2', HOME: '/x' })).toEqual({ SSH_AUTH_SOCK: '/run/agent.sock' });
    expect(remoteShellEnv({ SSH_AUTH_SOCK: '' })).toEqual({});
    expect(remoteShellEnv({})).toEqual({});
  });
});

describe('the parent of a remote destination (rsync makes the directory, not its parent)', () => {
  const cases: [string, string | undefined][] = [
    ['web1:/srv/www/ost', 'web1:/srv/www/'],
    ['web1:/srv/www/ost/', 'web1:/srv/www/'],
    ['web1:/ost', 'web1:/'],
    ['web1:/', undefined],
    ['deploy@web1:ost', 'deploy@web1:./'],
    ['deploy@web1:a/b', 'deploy@web1:a/'],
    ['web1:~/ost', 'web1:~/'],
    ['web1:.', undefined],
    ['web1:~', undefined],
    ['rsync://h/m/a/b', 'rsync://h/m/a/'],
    ['rsync://h/m/a', 'rsync://h/m/'],
    ['rsync://h/m', undefined],
    ['/srv/local/ost', undefined],
  ];
  for (const [text, parent] of cases) {
    it(`${text}: ${parent ?? 'nothing to check'}`, () => {
      const p = parentDestination(parseDestination(text));
      expect(p === undefined ? undefined : destinationArg(p)).toBe(parent);
    });
  }
});

describe('phases', () => {
  it('filter rules: packages first, then every directory, then the named top-level entries', () => {
    expect(phaseFilters('data')).toEqual(['+ /packages/***', '+ /.snapshots/', '+ /.snapshots/*/', '+ /.snapshots/*/packages/***', '- *']);
    expect(phaseFilters('metadata')).toEqual(['+ /*/***', '- *']);
    expect(phaseFilters('switch', ['current', 'odd[1]*'])).toEqual(['+ /current', '+ /odd\\[1]\\*', '- *']);
    expect(phaseFilters('delete')).toEqual([]);
    // Hidden on the sender only: the same names at a mirror are deleted, not protected.
    expect(SOURCE_INTERNALS.every((r) => r.startsWith('-s '))).toBe(true);
  });
  const orders: [string, { name: string; target?: string }[], string[][]][] = [
    ['the old layout: one link', [{ name: 'repodata', target: '.snapshots/1/repodata' }, { name: 'ost-images.repo' }, { name: 'RPM-GPG-KEY-ost-images' }], [['ost-images.repo', 'repodata', 'RPM-GPG-KEY-ost-images']]],
    [
      'the new layout: links through current come after it',
      [{ name: 'index.html', target: 'current/index.html' }, { name: 'repodata', target: 'current/repodata' }, { name: 'current', target: '.snapshots/2' }, { name: 'ost-images.repo' }],
      [['current', 'ost-images.repo'], ['index.html', 'repodata']],
    ],
    ['a chain of links', [{ name: 'c', target: 'b/x' }, { name: 'b', target: './a/y' }, { name: 'a', target: '.snapshots/1' }], [['a'], ['b'], ['c']]],
    ['a cycle (not ost-images): all at once', [{ name: 'a', target: 'b/x' }, { name: 'b', target: 'a/x' }], [['a', 'b']]],
    ['absolute targets depend on nothing', [{ name: 'a', target: '/srv/b' }, { name: 'b', target: '.snapshots/1' }], [['a', 'b']]],
  ];
  for (const [what, entries, groups] of orders) {
    it(`switch order: ${what}`, () => expect(switchOrder(entries)).toEqual(groups));
  }
});

describe('rsync output', () => {
  it('itemized lines of a verify run: differing, missing, extra; attribute-only lines ignored', () => {
    const out = [
      '.d..t...... ./',
      '>fc........ packages/a.rpm',
      '>f+++++++++ packages/b.rpm',
      'cd+++++++++ .snapshots/3/',
      'cL+++++++++ current -> .snapshots/3',
      'cLc.t...... repodata -> current/repodata',
      '.f..t...... ost-images.repo',
      '*deleting   packages/stray.rpm',
      '*deleting   .snapshots/1/',
      '',
      'Number of files: 12 (reg: 8, dir: 3, link: 1)',
    ].join('\n');
    expect(parseItemized(out)).toEqual({
      differing: ['packages/a.rpm', 'repodata'],
      missing: ['.snapshots/3/', 'current', 'packages/b.rpm'],
      extra: ['.snapshots/1/', 'packages/stray.rpm'],
    });
  });
  it('stats', () => {
    const out = 'Number of files: 4\nNumber of deleted files: 3\nNumber of regular files transferred: 2\nTotal transferred file size: 209,715,202 bytes\nTotal bytes sent: 209766619\n';
    expect(parseStats(out)).toEqual({ files: 2, bytes: 209715202, sentBytes: 209766619, deleted: 3 });
    expect(parseStats('')).toEqual({ files: 0, bytes: 0, sentBytes: 0, deleted: 0 });
  });
});

describe('several baseurls', () => {
  it('--url repeated: the list in the order given, replacing the environment default; each part of either a URL', () => {
    const c = new Command().exitOverride().option('--url <url>', '', repeatedUrl());
    c.parse(['--url', 'http://a/', '--url', 'https://b/x'], { from: 'user' });
    expect(c.opts().url).toBe('http://a/ https://b/x');
    expect(baseUrls(c.opts().url, 'http://env/')).toBe('http://a/ https://b/x');
    expect(baseUrls(undefined, 'http://env/  ftp://m/x ')).toBe('http://env/ ftp://m/x');
    expect(baseUrls(undefined, '')).toBeUndefined();
    const e = new Command().exitOverride().option('--url <url>', '', repeatedUrl());
    expect(() => e.parse(['--url', 'mirror.example.org/ost'], { from: 'user' })).toThrow("--url: 'mirror.example.org/ost' is not a usable URL: only http://, https://, ftp:// and file:// URLs are supported");
    // Issue 18: a newline or a space inside one --url made two base URLs, one of them no URL.
    expect(() => new Command().exitOverride().option('--url <url>', '', repeatedUrl()).parse(['--url', 'http://x/\ngpgcheck=0'], { from: 'user' })).toThrow(
      "--url: 'http://x/\\ngpgcheck=0' is not a usable URL: a control character cannot appear in a URL as it is (percent-encode it)",
    );
    expect(() => new Command().exitOverride().option('--url <url>', '', repeatedUrl()).parse(['--url', 'http://x/ gpgcheck=0'], { from: 'user' })).toThrow(
      "--url: 'http://x/ gpgcheck=0' is not a usable URL: a URL has no spaces (write a space as %20)",
    );
    expect(() => baseUrls(undefined, 'http://x/\ngpgcheck=0')).toThrow("OST_IMAGES_REPO_URL: 'http://x/\\ngpgcheck=0' is not a usable URL: a control character cannot appear");
    expect(() => baseUrls('https://me:secret@x/repo/')).toThrow("--url: 'https://me:***@x/repo/' is not a usable URL: a user name or password in a URL would be recorded in ost-images.repo, which the repository serves to anyone");
  });
  it('the .repo file lists every URL on one baseurl line; the key from the first', () => {
    const text = renderRepoFile('http://a/ost https://b/ost/', true);
    expect(text).toMatch(/^baseurl=http:\/\/a\/ost\/ https:\/\/b\/ost\/$/m);
    expect(text).toMatch(/^gpgkey=http:\/\/a\/ost\/RPM-GPG-KEY-ost-images$/m);
    expect(text).toContain('dnf tries them in this order');
    // One URL: the file as it always was.
    expect(renderRepoFile('http://a/ost', false)).not.toContain('mirrors');
    expect(renderRepoFile('http://a/ost', false)).toMatch(/^baseurl=http:\/\/a\/ost\/$/m);
  });
});
