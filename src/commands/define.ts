// Commands that read the definitions and the store and change nothing: validate, plan, manifest
// (which rewrites the manifest from the store), diff, and schema (the definition files' JSON
// Schemas, in commands/schema.ts). What does the work is imported when a command runs (see cli.ts,
// "Start-up").
import path from 'node:path';
import type { Command } from 'commander';
import type { PackageDiff } from '../records/package-diff.js';
import { StepError } from '../core/errors.js';
import { log } from '../core/log.js';
import { Store } from '../store/store.js';
import { currentBuilds, emit, layerSet, printPlan, withCommon, type Common } from './common.js';
import { registerSchema } from './schema.js';

export function registerDefine(program: Command): void {
  withCommon(program.command('validate'))
    .description('check a layer set and report every problem at once (exit 2 when invalid)')
    .action(async (o: Common) => {
      const ls = await layerSet(o);
      emit(o, { set: ls.set.name, layers: ls.order }, () => log.info(`set '${ls.set.name}' is valid: ${ls.order.join(', ')}`));
    });

  withCommon(program.command('plan'))
    .description('show what build would do for every layer, and why; builds nothing (same as build --dry-run)')
    .option('-l, --layer <name...>', 'plan only these layers and their ancestors (default: all)')
    .option('-f, --force', 'plan to rebuild the requested layers even if their inputs did not change')
    .option('--offline', 'use the last known upstream digests instead of fetching them')
    .option('--cache-repo <repo...>', 'repositories (directories or URLs) whose published layers are used instead of building them')
    .action(async (o: Common & { layer?: string[]; force?: boolean; offline?: boolean; cacheRepo?: string[] }) => {
      const [{ resolveUpstream }, { planBuild }, { planWithRootKey }] = await Promise.all([import('../plan/upstream.js'), import('../plan/plan.js'), import('../builder/root-key.js')]);
      const ls = await layerSet(o);
      const upstream = await resolveUpstream(ls, o.store, { offline: o.offline, allowUnknown: true });
      const remote = o.cacheRepo ? await (await import('../repository/read.js')).publishedKeys(o.cacheRepo) : undefined;
      const store = new Store(o.store);
      const makePlan = (rootKey: string | undefined) => planBuild(ls, o.layer ?? [], currentBuilds(store, ls.set.name, ls.order), { force: o.force, upstream, remote, rootKey });
      printPlan(o, (await planWithRootKey(ls, store, remote, makePlan, { create: false })).plan);
    });

  withCommon(program.command('manifest'))
    .description(`print the set's build manifest (${'<store>/<set>/manifest.json'}, rewritten by build, package and nightly), or its JSON Schema`)
    .option('--schema', 'print the JSON Schema that documents every field instead')
    .action(async (o: Common & { schema?: boolean }) => {
      const { MANIFEST_SCHEMA, writeManifest } = await import('../store/manifest.js');
      if (o.schema) {
        process.stdout.write(`${JSON.stringify(MANIFEST_SCHEMA, null, 2)}\n`);
        return;
      }
      const ls = await layerSet(o);
      const store = new Store(o.store);
      const unlock = await store.lock(ls.set.name);
      try {
        const m = await writeManifest(ls, store);
        process.stdout.write(`${JSON.stringify(m, null, 2)}\n`);
      } finally {
        unlock();
      }
    });

  withCommon(program.command('diff'))
    .description("what a layer build changed in packages against its parent: added, upgraded, removed (with versions)")
    .argument('[layer]', "layer whose current build to show (default: every layer of the set)")
    .option('-i, --image <file>', 'an image (e.g. an installed one) instead: reads the diff shipped beside it')
    .action(async (layer: string | undefined, o: Common & { image?: string }) => {
      const [{ imageOf }, { renderDiff }, { diffBesideImage }, { requireLayer }] = await Promise.all([
        import('../builder/build.js'),
        import('../builder/packages.js'),
        import('../consume/diff.js'),
        import('../plan/plan.js'),
      ]);
      const shown: { layer: string; image: string; diff: PackageDiff }[] = [];
      if (o.image) {
        shown.push({ layer: path.basename(o.image), image: o.image, diff: diffBesideImage(o.image) });
      } else {
        const ls = await layerSet(o);
        const store = new Store(o.store);
        for (const l of layer ? [layer] : ls.order) {
          requireLayer(ls, l);
          const rec = store.current(ls.set.name, l);
          if (!rec) throw new StepError(`layer '${l}' has no build yet`);
          shown.push({ layer: l, image: imageOf(store, rec), diff: diffBesideImage(imageOf(store, rec)) });
        }
      }
      emit(o, shown, () => shown.forEach((s) => process.stdout.write(`${s.layer} (${path.basename(s.image)}):\n${renderDiff(s.diff).trimEnd().split('\n').map((l) => `  ${l}\n`).join('')}`)));
    });
  registerSchema(program);
}
