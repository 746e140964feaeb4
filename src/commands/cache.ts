// `cache ls` and `cache gc`: the layer store, listed and trimmed (the work is in src/cache.ts,
// imported when a command runs).
import type { Command } from 'commander';
import { log } from '../core/log.js';
import { Store } from '../store/store.js';
import { emit, existingDirOption, layerSet, parseKeep, withCommon, type Common } from './common.js';

export function registerCache(program: Command): void {
  const cache = program.command('cache').description('list and trim the layer store');

  withCommon(cache.command('ls'))
    .description("every build in the store: layer, version-release, key, current, packaged, allocated size")
    .action(async (o: Common, cmd: Command) => {
      // A mistyped --store would list nothing, as an empty store does.
      const store = existingDirOption(cmd, 'store', '--store');
      const ls = await layerSet(o);
      const { listBuilds } = await import('../store/cache.js');
      const rows = listBuilds(ls, new Store(store));
      emit(o, rows, () =>
        rows.forEach((r) => log.info(`${r.current ? '*' : ' '} ${r.layer.padEnd(20)} ${r.build}  ${(r.key ?? '-').slice(0, 12).padEnd(12)}  ${String(r.allocatedMiB).padStart(6)} MiB  ${r.packaged ? 'packaged' : ''}`)),
      );
    });

  withCommon(cache.command('gc'))
    .description('delete builds no longer needed: keeps current builds, the newest of each layer, published builds, and everything they are built on')
    .option('-k, --keep <n>', 'newest builds to keep per layer', '2')
    .option('-r, --repo <dir>', 'also keep every build whose package is published in this repository')
    .option('-n, --dry-run', 'only say what would be deleted')
    .action(async (o: Common & { keep: string; repo?: string; dryRun?: boolean }, cmd: Command) => {
      const keep = parseKeep(o.keep)!;
      const store = existingDirOption(cmd, 'store', '--store');
      const ls = await layerSet(o);
      const { collectGarbage } = await import('../store/cache.js');
      const r = await collectGarbage(ls, new Store(store), { keep, repo: o.repo, dryRun: o.dryRun });
      emit(o, { removed: r.removed.map((b) => `${b.layer} ${b.version}-${b.release}`), kept: r.kept, freedBytes: r.freedBytes, dryRun: !!o.dryRun }, () => {
        r.removed.forEach((b) => log.info(`${o.dryRun ? 'would delete' : 'deleted'} ${b.layer} ${b.version}-${b.release}`));
        log.info(`${r.removed.length} build(s) ${o.dryRun ? 'to delete' : 'deleted'}, ${(r.freedBytes / 2 ** 20).toFixed(0)} MiB; ${r.kept} kept`);
      });
    });
}
