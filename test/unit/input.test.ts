// The shared parsers of user input (src/input/): numbers with ranges, URLs (and the masking of
// their passwords in every message), paths (directories that must exist, output files that may
// only be regular files, file-system errors as bad input) and names a program would read as
// options. Tables: the same shape, many values.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import { checkNames } from '../../src/input/args.js';
import { CPUS, DAYS, KEEP, KIB_PER_S, SECONDS, numberProblem, parseNumber, textNumberProblem } from '../../src/input/numbers.js';
import { existingDir, fsError, repoDirOrUrl, writeOutputFile } from '../../src/input/paths.js';
import { redactSecrets } from '../../src/core/redact.js';
import { maskUrl, parseUrl, parseUrlList, urlProblem } from '../../src/input/urls.js';
import { testTmp } from '../helpers/tmp.js';

const tmp = testTmp('input');
const HUGE = '9'.repeat(400); // Infinity to Number()

describe('numbers: one parser, a rule per kind of value', () => {
  const ok: [string, typeof KEEP, string, number][] = [
    ['--keep', KEEP, '1', 1],
    ['--keep', KEEP, '1000', 1000],
    ['--keep', KEEP, '007', 7],
    ['--keep-used-within', DAYS, '0.5', 0.5],
    ['--keep-used-within', DAYS, '3650', 3650],
    ['--timeout', SECONDS, '604800', 604800],
    ['--bwlimit', KIB_PER_S, '4096', 4096],
    ['--cpus', CPUS, '64', 64],
  ];
  it.each(ok)('%s %s', (option, rule, text, value) => {
    expect(parseNumber(option, text, rule)).toBe(value);
  });
  const bad: [string, typeof KEEP, string, string][] = [
    ['--keep', KEEP, '0', "--keep: '0' is not a positive whole number (1 to 1000)"],
    ['--keep', KEEP, '1001', "--keep: '1001' is not a positive whole number (1 to 1000)"],
    ['--keep', KEEP, '1.5', "--keep: '1.5' is not a positive whole number (1 to 1000)"],
    ['--keep', KEEP, '-1', "--keep: '-1' is not a positive whole number (1 to 1000)"],
    ['--keep', KEEP, '1e3', "--keep: '1e3' is not a positive whole number (1 to 1000)"],
    ['--keep', KEEP, ' 2', "--keep: ' 2' is not a positive whole number (1 to 1000)"],
    ['--keep', KEEP, '', "--keep: '' is not a positive whole number (1 to 1000)"],
    ['--keep', KEEP, HUGE, `--keep: '${'9'.repeat(60)}…' (400 characters) is not a positive whole number (1 to 1000)`],
    ['--keep-used-within', DAYS, '0', "--keep-used-within: '0' is not a positive number of days (more than 0, at most 3650)"],
    ['--keep-used-within', DAYS, HUGE, `--keep-used-within: '${'9'.repeat(60)}…' (400 characters) is not a positive number of days (more than 0, at most 3650)`],
    ['--keep-used-within', DAYS, 'Infinity', "--keep-used-within: 'Infinity' is not a positive number of days (more than 0, at most 3650)"],
    ['--keep-used-within', DAYS, '0x10', "--keep-used-within: '0x10' is not a positive number of days (more than 0, at most 3650)"],
    // Past what a timer holds (2^31-1 ms): it would fire at once.
    ['--timeout', SECONDS, '2147484', "--timeout: '2147484' is not a positive whole number of seconds (1 to 604800)"],
    ['--cpus', CPUS, '65', "--cpus: '65' is not a whole number of virtual CPUs (1 to 64)"],
  ];
  it.each(bad)('%s %j: exit 2 naming the option, the value and the range', (option, rule, text, message) => {
    expect(() => parseNumber(option, text, rule)).toThrow(new UsageError(message));
    expect(textNumberProblem(text, rule)).toBeDefined();
  });
  it('a settings file gives numbers: the same rules, its own words (a quoted number is refused)', () => {
    expect(numberProblem(3, KEEP)).toBeUndefined();
    expect(numberProblem(0.25, DAYS)).toBeUndefined();
    expect(numberProblem(Infinity, DAYS)).toBe('must be a positive number of days (more than 0, at most 3650), got number Infinity');
    expect(numberProblem(Number(HUGE), KEEP)).toBe('must be a positive whole number (1 to 1000), got number Infinity');
    expect(numberProblem('3', KEEP)).toBe('must be a positive whole number (1 to 1000), got string "3"');
    expect(numberProblem(2.5, KEEP)).toBe('must be a positive whole number (1 to 1000), got number 2.5');
  });
});

describe('URLs: one parser, credentials masked in every message', () => {
  const problems: [string, string | undefined][] = [
    ['https://ci.example.org/ost/', undefined],
    ['file:///srv/repo', undefined],
    ['http://x/\ngpgcheck=0', 'a control character cannot appear in a URL as it is (percent-encode it)'],
    ['http://x/\tgpgcheck=0', 'a control character cannot appear in a URL as it is (percent-encode it)'],
    ['http://x/ gpgcheck=0', 'a URL has no spaces (write a space as %20)'],
    ['http:example.org', 'write it as http://...'],
    ['ftp://x/', 'only http://, https:// and file:// URLs are supported'],
    ['https:///x', 'an https:// URL needs a host name'],
    ['https://u:p@x/', 'a user name or password in a URL would be recorded in build records and published packages'],
  ];
  it.each(problems)('%j', (text, problem) => {
    expect(urlProblem(text)).toBe(problem);
  });
  it('schemes and credentials are the caller\'s rules; the message masks the password', () => {
    expect(urlProblem('ftp://x/', { schemes: ['http', 'ftp'] })).toBeUndefined();
    expect(urlProblem('https://u:p@x/', { credentials: true })).toBeUndefined();
    expect(() => parseUrl('--repo', 'https://me:hunter2@x/ r')).toThrow(new UsageError("--repo: 'https://me:***@x/ r' is not a usable URL: a URL has no spaces (write a space as %20)"));
    expect(parseUrlList('--url', 'http://a/  http://b/')).toBe('http://a/ http://b/');
    expect(() => parseUrlList('--url', 'http://a/\nhttp://b/')).toThrow(/a control character/);
    expect(() => parseUrlList('--url', ' ')).toThrow('--url: is empty');
  });
  const masked: [string, string][] = [
    ['rsync://user:password@host/m/x', 'rsync://user:***@host/m/x'],
    ['error: rsync://u:p@h/m failed; https://a:b@c/ too', 'error: rsync://u:***@h/m failed; https://a:***@c/ too'],
    ['https://token@x/', 'https://token@x/'],
    ["--to: 'deploy:s3cret@web1:/srv'", "--to: 'deploy:***@web1:/srv'"],
    ['dnf --repofrompath=ost-images,http://me:pw@repo/', 'dnf --repofrompath=ost-images,http://me:***@repo/'],
    ['no secret: host:path and a:b', 'no secret: host:path and a:b'],
  ];
  it.each(masked)('masks %j', (text, want) => {
    expect(redactSecrets(text)).toBe(want);
    expect(maskUrl(text)).toBe(want);
  });
});

describe('paths', () => {
  it('a directory that must exist: missing, a file, too long, a file on the way: exit 2 naming the option and the path', () => {
    const file = path.join(tmp, 'a-file');
    writeFileSync(file, 'x');
    expect(existingDir('--root', tmp)).toBe(tmp);
    expect(existingDir('--vm-dir', path.join(tmp, 'later'), { mayBeMissing: true })).toBe(path.join(tmp, 'later'));
    const cases: [string, RegExp][] = [
      [path.join(tmp, 'no-such'), /^--root: '.*no-such': does not exist \(or a folder on its way does not\) \(ENOENT\)$/],
      [file, /^--root: '.*a-file' is a regular file, not a directory$/],
      [path.join(tmp, 'x'.repeat(300)), /^--root: '.*…x+': the name is too long \(at most 255 bytes per name, 4095 for the whole path\) \(ENAMETOOLONG\)$/],
      [path.join(file, 'sub'), /^--root: '.*a-file\/sub': a part of it is not a directory \(ENOTDIR\)$/],
    ];
    for (const [p, message] of cases) {
      expect(() => existingDir('--root', p)).toThrow(UsageError);
      expect(() => existingDir('--root', p)).toThrow(message);
    }
  });

  it('--out writes only a regular file: new, or a regular file replaced by rename; a device, FIFO, link or folder is exit 2 and untouched', () => {
    const write = (f: string) => (abs: string) => writeFileSync(abs, `for ${path.basename(f)}\n`);
    const fresh = path.join(tmp, 'new.yml');
    expect(writeOutputFile('--out', fresh, write(fresh))).toBe(fresh);
    expect(readFileSync(fresh, 'utf8')).toBe('for new.yml\n');
    const fifo = path.join(tmp, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const target = path.join(tmp, 'target');
    writeFileSync(target, 'precious');
    const link = path.join(tmp, 'link');
    symlinkSync(target, link);
    const dir = path.join(tmp, 'folder');
    mkdirSync(dir);
    const refused: [string, string][] = [
      ['/dev/null', 'a device'],
      [fifo, 'a FIFO'],
      [link, 'a symbolic link'],
      [dir, 'a directory'],
    ];
    for (const [p, kind] of refused) {
      expect(() => writeOutputFile('--out', p, write(p))).toThrow(new UsageError(`--out: '${p}' is ${kind}; --out writes only a regular file (a new one, or replacing one)`));
    }
    expect(readFileSync(target, 'utf8')).toBe('precious');
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
    expect(() => writeOutputFile('--out', path.join(tmp, 'y'.repeat(300)), write('x'))).toThrow(/--out: .*: the name is too long .*\(ENAMETOOLONG\)/);
  });

  it('fsError: errors about the path are bad input, others (out of space, I/O) are not', () => {
    const e = (code: string) => Object.assign(new Error(code), { code });
    expect(fsError('--to', '/x', e('EISDIR'))?.message).toBe("--to: '/x': is a directory, where a file is expected (EISDIR)");
    expect(fsError('--root', '/x', e('EEXIST'))?.message).toBe("--root: '/x': exists, and is not a directory (EEXIST)");
    expect(fsError('--to', '/x', e('ENOSPC'))).toBeUndefined();
    expect(fsError('--to', '/x', e('EIO'))).toBeUndefined();
  });

  it('a repository given as a directory or a URL', () => {
    expect(repoDirOrUrl('--repo', tmp)).toBe(tmp);
    expect(repoDirOrUrl('--repo', 'https://u:p@x/repo/')).toBe('https://u:p@x/repo/');
    expect(() => repoDirOrUrl('--repo', path.join(tmp, 'missing'))).toThrow(/^--repo: '.*missing': does not exist/);
    expect(() => repoDirOrUrl('--repo', 'https://u:p@x/a b')).toThrow("--repo: 'https://u:***@x/a b' is not a usable URL");
  });
});

describe('names a program would read as options', () => {
  it('are refused, every one at once', () => {
    expect(checkNames('package name', ['ost-images-base', 'a.b+c'])).toEqual(['ost-images-base', 'a.b+c']);
    expect(() => checkNames('package name', ['--installroot=/x', 'ok', '-y', '', 'a\nb'])).toThrow(
      new UsageError(
        [
          "package name '--installroot=/x' starts with '-', so a program would read it as an option",
          "package name '-y' starts with '-', so a program would read it as an option",
          "package name '' is empty",
          "package name 'a\\nb' holds a control character",
        ].join('\n'),
      ),
    );
  });
});
