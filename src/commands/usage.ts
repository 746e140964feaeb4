// `ost-images usage`: web-server access logs into the repository's record of which build is still
// downloaded (the work is in src/usage/usage.ts; prune --keep-used-within reads the record).
import type { Command } from 'commander';
import { log } from '../core/log.js';
import { DEFAULT_REPO_DIR } from '../core/paths.js';
import type { LogResult, UsageResult } from '../usage/usage.js';
import { emit } from './common.js';

function describeLog(r: LogResult): string {
  const fresh = r.lines - r.alreadyRead;
  const ignored = Object.entries(r.ignoredBy)
    .sort((a, b) => b[1] - a[1])
    .map(([why, n]) => `${why} ${n}`)
    .join(', ');
  return (
    `${r.file}: ${r.lines} line(s)${r.alreadyRead ? `, ${r.alreadyRead} read before` : ''}; ${fresh} new: ` +
    `${r.downloads} download(s), ${r.partial} partial, ${r.ignored} ignored${ignored ? ` (${ignored})` : ''}, ${r.malformed} malformed`
  );
}

function printUsage(r: UsageResult): void {
  for (const l of r.logs) log.info(describeLog(l));
  if (r.builds.length === 0) log.info('no download of any build of this repository recorded yet');
  for (const b of r.builds) {
    const added = b.newDownloads || b.newPartial ? `  (+${b.newDownloads}${b.newPartial ? `, +${b.newPartial} partial` : ''} from these logs)` : '';
    log.info(`  ${b.nvr}: ${b.downloads} download(s)${b.partial ? ` and ${b.partial} partial` : ''}, last ${b.lastDownloaded}${added}`);
  }
}

export function registerUsage(program: Command): void {
  program
    .command('usage')
    .description(
      'read web-server access logs (nginx/Apache common or combined, Python http.server; gzip-compressed rotated logs too) and record, per build, how often and when its package was last downloaded, for prune --keep-used-within',
    )
    .option('-r, --repo <dir>', 'repository directory (the record is <repo>/usage.json)', DEFAULT_REPO_DIR)
    .option('--access-log <file>', 'an access log of a server (or mirror) serving the repository; repeat for several; a log read before counts only its new lines', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--json', 'machine-readable result on stdout')
    .addHelpText(
      'after',
      `
A download is a GET answered 200 whose path ends in /packages/<file>.rpm (under any URL prefix)
for a file some snapshot of the repository lists or listed. 206 (a range, e.g. a resumed
download) and a 200 cut short count as use (they move the last-download time) but not as
downloads. HEAD, 304, 404 and other paths are ignored and counted; malformed lines are counted,
skipped and the first few shown as file:line. Times without a zone (Python's http.server) are
read in the local time zone: set TZ to the server's.

Each log is known by its first 8 lines: reading it again, after it grew, or after logrotate
renamed or compressed it, counts only lines not counted before.

Example:
  ost-images usage --repo /srv/ost-images --access-log /var/log/nginx/access.log --access-log /var/log/nginx/access.log.1`,
    )
    .action(async (o: { repo: string; accessLog?: string[]; json?: boolean }) => {
      const [{ refreshServedPage }, { recordUsage }] = await Promise.all([import('../status/status-page.js'), import('../usage/usage.js')]);
      // The served page shows last use at once, not only after the next publish.
      const r = await recordUsage(o.repo, o.accessLog ?? [], { afterWrite: () => refreshServedPage(o.repo) });
      emit(o, r, () => printUsage(r));
    });
}
