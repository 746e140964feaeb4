// Commands that make things in the store: build, package, and all (build to boot in one go).
// What does the work is imported when a command runs (see cli.ts, "Start-up").
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { PAYLOAD } from '../definitions/names.js';
import { UsageError } from '../core/errors.js';
import { log } from '../core/log.js';
import { DEFAULT_REPO_DIR } from '../core/paths.js';
import { Store } from '../store/store.js';
import { currentBuilds, emit, layerSet, printPlan, withCommon, type Common } from './common.js';

export function registerBuild(program: Command): void {
  withCommon(program.command('build'))
    .description('build the layers whose inputs changed (and missing ancestors) as qcow2 overlays into the store')
    .option('-l, --layer <name...>', 'build only these layers and what they need (default: all)')
    .addOption(new Option('-b, --backend <name>', 'how layer steps run').choices(['auto', 'chroot', 'guestfs']).default('auto'))
    .option('-f, --force', 'rebuild the requested layers even if their inputs did not change')
    .option('-n, --dry-run', 'print the plan, build nothing')
    .option('--offline', 'use the last known upstream digests instead of fetching them')
    .option('--cache-repo <repo...>', 'repositories (directories or URLs) whose published layers are used instead of building them')
    .option('--with-packages <dir>', 'build a throw-away layer with your own package files from DIR (.deb or .rpm) installed; needs --on and --name')
    .option('--on <layer>', 'with --with-packages: the layer to build it on')
    .option('--name <name>', 'with --with-packages: the throw-away layer\'s name (kept in the store only)')
    .option('--package', 'with --with-packages: also wrap it in an RPM (into the store, or --out)')
    .option('--out <dir>', 'with --package: where the RPM goes')
    .action(async (o: Common & { layer?: string[]; backend: 'auto' | 'chroot' | 'guestfs'; dryRun?: boolean; force?: boolean; offline?: boolean; cacheRepo?: string[]; withPackages?: string; on?: string; name?: string; package?: boolean; out?: string }) => {
      const [{ withCustomLayer }, { resolveUpstream }, { planBuild }, { planWithRootKey }] = await Promise.all([
        import('../builder/custom.js'),
        import('../plan/upstream.js'),
        import('../plan/plan.js'),
        import('../builder/root-key.js'),
      ]);
      let ls = await layerSet(o);
      if (o.withPackages !== undefined || o.on !== undefined || o.name !== undefined) {
        if (o.withPackages === undefined || o.on === undefined || o.name === undefined) throw new UsageError('--with-packages, --on and --name go together');
        if (o.layer) throw new UsageError('--layer does not go with --with-packages (the layer built is --name)');
        ls = withCustomLayer(ls, { dir: o.withPackages, on: o.on, name: o.name });
        o.layer = [o.name];
      } else if (o.package || o.out) {
        throw new UsageError('--package and --out go with --with-packages; use `ost-images package` for the set\'s layers');
      }
      const store = new Store(o.store);
      const upstream = await resolveUpstream(ls, o.store, { offline: o.offline });
      const remote = o.cacheRepo ? await (await import('../repository/read.js')).publishedKeys(o.cacheRepo) : undefined;
      // One planning path for --dry-run and the build itself, which plans under the set's lock.
      const makePlan = (rootKey: string | undefined) =>
        planBuild(ls, o.layer ?? [], currentBuilds(store, ls.set.name, ls.order), { force: o.force, upstream, remote, rootKey });
      if (o.dryRun) {
        printPlan(o, (await planWithRootKey(ls, store, remote, makePlan, { create: false })).plan);
        return;
      }
      const { buildCustom, buildSet } = await import('../jobs/build.js');
      if (o.withPackages !== undefined) {
        const { result, image } = await buildCustom(ls, store, makePlan, o.backend, { name: o.name!, package: o.package, out: o.out }, remote);
        emit(o, result, () => log.info(`${o.name}: ${image}${result.package ? `, package ${result.package.rpm}` : ''}`));
        return;
      }
      const result = await buildSet(ls, store, makePlan, o.backend, remote);
      emit(o, result, () => undefined);
    });

  withCommon(program.command('package'))
    .description("wrap each layer's current build into an RPM (layers that already have one are left as they are)")
    .option('-l, --layer <name...>', 'package only these layers (default: all)')
    .option('--payload <setting>', "rpm _binary_payload, e.g. w6T0L27.zstdio (default), w7T0.xzdio (release), w9T0.xzdio")
    .option('--out <dir>', "write the RPMs here instead of the store's rpms directory")
    .action(async (o: Common & { layer?: string[]; payload?: string; out?: string }) => {
      if (o.payload !== undefined && !PAYLOAD.test(o.payload)) throw new UsageError(`--payload: '${o.payload}' is not an rpm payload setting like w6T0L27.zstdio, w9T0.xzdio or w.ufdio`);
      const [{ requireLayer }, { packageLayers }, { writeManifest }] = await Promise.all([
        import('../plan/plan.js'),
        import('../package/package.js'),
        import('../store/manifest.js'),
      ]);
      const ls = await layerSet(o);
      const store = new Store(o.store);
      const layers = o.layer ?? ls.order;
      layers.forEach((l) => requireLayer(ls, l));
      const unlock = await store.lock(ls.set.name);
      try {
        if (o.out) mkdirSync(o.out, { recursive: true });
        const results = await packageLayers(ls, layers, store, o.payload, o.out);
        await writeManifest(ls, store);
        emit(o, results, () => results.forEach((r) => log.info(`${r.layer}: ${r.action} ${r.rpm}`)));
      } finally {
        unlock();
      }
    });

  withCommon(program.command('all'))
    .description('the main job: build, package and publish the set, then install a top layer from the repository into a scratch root, verify its chain and boot it')
    .option('-r, --repo <dir>', 'repository directory', DEFAULT_REPO_DIR)
    .option('--install <layer>', 'layer to install and boot from the published repository', 'engine-installed')
    .option('--root <dir>', 'scratch install root', path.join(DEFAULT_REPO_DIR, '..', 'scratch-root'))
    .addOption(new Option('-b, --backend <name>', 'how layer steps run').choices(['auto', 'chroot', 'guestfs']).default('auto'))
    .option('--no-boot', 'skip the boot test of the installed image')
    .option('--offline', 'use the last known upstream digests instead of fetching them')
    .action(async (o: Common & { repo: string; install: string; root: string; backend: 'auto' | 'chroot' | 'guestfs'; boot: boolean; offline?: boolean }) => {
      const [{ requireLayer }, { all }] = await Promise.all([import('../plan/plan.js'), import('../jobs/all.js')]);
      const ls = await layerSet(o);
      requireLayer(ls, o.install);
      const { summary: s, wanted } = await all(ls, o);
      emit(o, s, () => {
        log.info(`done: ${wanted} and its chain are installed in ${path.resolve(o.root)}`);
        log.info(`  image: ${s.image}`);
        log.info(`  chain: ${s.chain.map((c) => path.basename(c.file)).join(' -> ')}`);
        log.info(`  stages: ${Object.entries(s.stages).map(([k, v]) => `${k} ${v.toFixed(0)}s`).join(', ')}`);
      });
    });
}
