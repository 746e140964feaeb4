// mirror: pushes the served snapshot of a repository to other places test machines read from (the
// work is in mirror/mirror.ts, imported when the command runs).
import type { Command } from 'commander';
import { UsageError, quote } from '../core/errors.js';
import { log } from '../core/log.js';
import { DEFAULT_REPO_DIR } from '../core/paths.js';
import type { MirrorReport } from '../mirror/mirror.js';
import { KIB_PER_S, parseOptionalNumber } from '../input/numbers.js';
import { emit } from './common.js';

function printDifferences(r: MirrorReport): void {
  for (const d of r.destinations) {
    if (!d.verify) continue;
    for (const f of d.verify.differing) log.error(`mirror ${d.dest}: differs:  ${f}`);
    for (const f of d.verify.missing) log.error(`mirror ${d.dest}: missing:  ${f}`);
    for (const f of d.verify.extra) log.error(`mirror ${d.dest}: extra:    ${f}`);
  }
}

function printReport(r: MirrorReport): void {
  printDifferences(r);
  for (const d of r.destinations) {
    if (d.verify) {
      if (d.verify.ok) log.info(`mirror ${d.dest}: identical to ${r.source} (snapshot ${r.snapshot})`);
    } else {
      log.info(`mirror ${d.dest}: serving snapshot ${r.snapshot}; sent ${d.files} file(s), ${d.bytes} byte(s), deleted ${d.deleted}, in ${d.seconds.toFixed(1)} s`);
    }
  }
}

export function registerMirror(program: Command): void {
  program
    .command('mirror')
    .description(
      'push the served snapshot of a repository to mirrors (local directories, rsync daemons, ssh hosts) so that their clients never see a mixture: new packages, then metadata, then the switch (one rename per link), then removal of what the source no longer keeps',
    )
    .option('-r, --repo <dir>', 'the source repository', DEFAULT_REPO_DIR)
    .option('--to <dest>', 'a mirror: a local directory, rsync://host[:port]/module/path (rsync daemon; the module needs "munge symlinks = no"), or [user@]host:path (over ssh); repeat for several', (v: string, prev: string[] = []) => [...prev, v])
    .option('--verify', "change nothing: compare every file's checksum at each mirror with the source; exit 1 naming each differing, missing or extra file")
    .option('--checksum', 'when syncing, compare files by checksum rather than size and time (repairs a damaged file that kept its size and time; reads every file at both ends)')
    .option('--rsh <command>', 'the remote shell of [user@]host:path mirrors, as rsync --rsh (e.g. "ssh -p 2222 -i /etc/ost-images/mirror_key"; rsync splits it at spaces, quotes group, no shell); default: $RSYNC_RSH, else ssh (which also reads ~/.ssh/config and an agent through $SSH_AUTH_SOCK)')
    .option('--bwlimit <KiB/s>', 'limit the bandwidth of every transfer (rsync --bwlimit), so a mirror over a WAN link leaves room for its other users')
    .option('--json', 'machine-readable report on stdout: per mirror, files and bytes sent and seconds per phase, or the verify result')
    .addHelpText(
      'after',
      `
A destination is written only when it is empty (or new) or holds .ost-images-mirror, which the
first push writes there: a push deletes whatever the source does not have, so any other folder is
refused (exit 2), also one that merely looks like a mirror.

The source is read under its repository lock: a publish waits until the mirror is done. A mirror
keeps what the source keeps (the served snapshot, the one it replaced, and those retired within the
grace period), so run it soon after each publish. Interrupted, it leaves no half file under a final
name; run it again to complete.

Examples:
  ost-images mirror --repo repo/ --to /srv/mirror/ost-images --to rsync://mirror2/ost-images/
  ost-images mirror --repo repo/ --to rsync://mirror2/ost-images/ --verify --json
  ost-images mirror --repo repo/ --to deploy@web3:/srv/www/ost-images --rsh 'ssh -p 2222 -i /etc/ost-images/mirror_key'`,
    )
    .action(async (o: { repo: string; to?: string[]; verify?: boolean; checksum?: boolean; bwlimit?: string; rsh?: string; json?: boolean }) => {
      const bwlimit = parseOptionalNumber('--bwlimit', o.bwlimit, KIB_PER_S);
      if (o.rsh !== undefined && o.rsh.trim() === '') throw new UsageError('--rsh: is empty; leave it out for rsync\'s default (ssh)');
      if (o.rsh !== undefined && /[\u0000-\u001f\u007f]/.test(o.rsh)) throw new UsageError(`--rsh: ${quote(o.rsh)} holds a control character`);
      const { mirror } = await import('../mirror/mirror.js');
      const r = await mirror(o.repo, o.to ?? [], { verifyOnly: o.verify, checksum: o.checksum, bwlimit, rsh: o.rsh });
      // Differences go to stderr with --json too: a person reading a CI log sees them there.
      emit(o, r, () => printReport(r));
      if (o.json) printDifferences(r);
      // Set, not thrown: the report above names every difference.
      if (!r.ok) process.exitCode = 1;
    });
}
