// The command line. One top-level catch maps errors to fixed exit codes; stack traces only with
// --debug. Human progress goes to stderr, --json results to stdout.
import { Command, Option } from 'commander';
import { loadLayerSet } from './definitions/load.js';
import { EXIT_FAILED, OstError } from './errors.js';
import { chooseBackend, type BackendName } from './host.js';
import { installSignalHandlers } from './interrupt.js';
import { configureLog, isDebug, log } from './log.js';
import { DEFAULT_LAYERS_DIR, DEFAULT_SET } from './paths.js';
import { planBuild } from './plan/plan.js';
import { Store, defaultStoreDir } from './store.js';
import { executePlan, imageOf } from './builder/build.js';
import { flattenLayers } from './builder/flatten.js';
import { recoverOrphans } from './builder/recover.js';
import { installInto } from './consume/install.js';
import { publishedKeys } from './consume/remote-cache.js';
import { testBoot } from './consume/test-boot.js';
import { verifyChain } from './consume/verify.js';
import { StepError, UsageError } from './errors.js';
import { currentRpms, packageBuild, packageLayers } from './package/package.js';
import { DEFAULT_PAYLOAD } from './package/spec.js';
import { withCustomLayer } from './builder/custom.js';
import { DEFAULT_REPO_DIR } from './paths.js';
import { FLAT_SUFFIX, imageFileName, packageName, rpmFileName, unqualifiedName } from './plan/naming.js';
import { requireLayer, topLayers, type BuildPlan } from './plan/plan.js';
import { prune, publish, rollback, type PublishOptions, type PublishResult } from './publish/publish.js';
import { nightly, renderReport, writeReport } from './nightly.js';
import { PUBLIC_KEY_FILE } from './publish/snapshot.js';
import { removeOld } from './consume/remove-old.js';
import { diffBesideImage } from './consume/diff.js';
import { MANIFEST_SCHEMA, writeManifest } from './manifest.js';
import { renderDiff, type PackageDiff } from './builder/packages.js';
import { resolveUpstream } from './plan/upstream.js';
import path from 'node:path';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { planGc } from './plan/gc.js';
import { PAYLOAD } from './definitions/names.js';

interface Common {
  set: string;
  layersDir: string;
  store: string;
  json?: boolean;
}

function emit(opts: { json?: boolean }, value: unknown, human: () => void): void {
  if (opts.json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else human();
}

function currentBuilds(store: Store, set: string, layers: string[]) {
  return new Map(layers.map((l) => [l, store.current(set, l)]));
}

export function buildProgram(): Command {
  const program = new Command('ost-images')
    .description('Build VM disk images in layers (qcow2 overlays) and ship every layer as an RPM in a DNF repository.')
    .option('--debug', 'log every command run and show stack traces')
    .option('-q, --quiet', 'only warnings and errors on stderr')
    .addHelpText(
      'after',
      `
Examples:
  ost-images all                                   build, package, publish into repo/, install and boot the default set
  ost-images build --layer engine-installed        rebuild one layer on the existing builds of its parents
  ost-images build --dry-run --json                what a build would do, for machines
  ost-images test-boot --layer host-installed      boot a layer's current build and log in over SSH
  ost-images install --repo http://host/repo/ --root /tmp/r ost-images-engine-installed
  ost-images nightly --keep 3 --sign-key ci@example.org --url https://ci.example.org/ost-images/
                                                   the nightly gate: build, boot-test, publish only if all passed
  ost-images publish --rollback                    serve the previous snapshot of repo/ again
  ost-images prune --keep 2 --dry-run              what retention would remove (chains stay whole)
  ost-images remove-old --keep 1                   on a test machine: old builds no running VM uses

Exit codes: 0 success, 1 a step failed, 2 bad input (nothing written), 130 interrupted.
Layer sets live in layers/<set>/ (set.yaml, <layer>/layer.yaml); see README.md.`,
    )
    .hook('preAction', (cmd) => {
      const o = cmd.opts<{ debug?: boolean; quiet?: boolean }>();
      configureLog({ debug: o.debug, quiet: o.quiet });
    });

  const withCommon = (c: Command): Command =>
    c
      .option('-s, --set <name>', 'layer set (a folder under the layers directory)', DEFAULT_SET)
      .option('--layers-dir <dir>', 'where layer sets are defined', DEFAULT_LAYERS_DIR)
      .option('--store <dir>', 'layer store: images, build records, RPMs', defaultStoreDir())
      .option('--json', 'machine-readable result on stdout');

  withCommon(program.command('validate'))
    .description('check a layer set and report every problem at once (exit 2 when invalid)')
    .action((o: Common) => {
      const ls = loadLayerSet(o.layersDir, o.set);
      emit(o, { set: ls.set.name, layers: ls.order }, () => log.info(`set '${ls.set.name}' is valid: ${ls.order.join(', ')}`));
    });

  const printPlan = (o: { json?: boolean }, plan: BuildPlan): void =>
    emit(o, plan, () => {
      for (const e of plan.entries) {
        log.info(`${e.layer}: ${e.action} (${e.reason}) key ${e.key.slice(0, 12)}`);
        for (const c of e.changes) log.info(`    ${c}`);
      }
    });

  withCommon(program.command('plan'))
    .description('show what build would do for every layer, and why; builds nothing (same as build --dry-run)')
    .option('-l, --layer <name...>', 'plan only these layers and their ancestors (default: all)')
    .option('-f, --force', 'plan to rebuild the requested layers even if their inputs did not change')
    .option('--offline', 'use the last known upstream digests instead of fetching them')
    .option('--cache-repo <repo...>', 'repositories (directories or URLs) whose published layers are used instead of building them')
    .action(async (o: Common & { layer?: string[]; force?: boolean; offline?: boolean; cacheRepo?: string[] }) => {
      const ls = loadLayerSet(o.layersDir, o.set);
      const digests = await resolveUpstream(ls, o.store, { offline: o.offline, allowUnknown: true });
      const remote = o.cacheRepo ? await publishedKeys(o.cacheRepo) : undefined;
      const store = new Store(o.store);
      printPlan(o, planBuild(ls, o.layer ?? [], currentBuilds(store, ls.set.name, ls.order), { force: o.force, digests, remote }));
    });

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
      let ls = loadLayerSet(o.layersDir, o.set);
      if (o.withPackages !== undefined || o.on !== undefined || o.name !== undefined) {
        if (o.withPackages === undefined || o.on === undefined || o.name === undefined) throw new UsageError('--with-packages, --on and --name go together');
        if (o.layer) throw new UsageError('--layer does not go with --with-packages (the layer built is --name)');
        ls = withCustomLayer(ls, { dir: o.withPackages, on: o.on, name: o.name });
        o.layer = [o.name];
      } else if (o.package || o.out) {
        throw new UsageError('--package and --out go with --with-packages; use `ost-images package` for the set\'s layers');
      }
      const store = new Store(o.store);
      const digests = await resolveUpstream(ls, o.store, { offline: o.offline });
      const remote = o.cacheRepo ? await publishedKeys(o.cacheRepo) : undefined;
      const makePlan = () =>
        planBuild(ls, o.layer ?? [], currentBuilds(store, ls.set.name, ls.order), { force: o.force, digests, remote });
      if (o.dryRun) {
        printPlan(o, makePlan());
        return;
      }
      // Plan under the lock: a build that waited for another one reuses what that one built.
      const unlock = await store.lock(ls.set.name);
      try {
        const plan = makePlan();
        const toBuild = plan.entries.filter((e) => e.action === 'build').length;
        const toFetch = plan.entries.filter((e) => e.action === 'fetch').length;
        await recoverOrphans(store);
        // Nothing to build needs no backend, so no KVM probe either.
        const backend = toBuild > 0 ? await chooseBackend(o.backend) : 'chroot';
        log.info(`set '${ls.set.name}': ${toBuild} layer(s) to build${toBuild ? `, backend ${backend}` : ''}${toFetch ? `, ${toFetch} to fetch` : ''}, store ${store.root}`);
        const results = await executePlan(ls, plan, store, backend);
        if (o.withPackages !== undefined) {
          // A throw-away layer: not in the set's manifest, packaged only when asked.
          const rec = store.current(ls.set.name, o.name!)!;
          if (o.out) mkdirSync(o.out, { recursive: true });
          const pkg = o.package ? await packageBuild(ls, rec, store, ls.set.package.payload ?? DEFAULT_PAYLOAD, o.out) : undefined;
          emit(o, { set: ls.set.name, backend, layers: results, package: pkg }, () => log.info(`${o.name}: ${imageOf(store, rec)}${pkg ? `, package ${pkg.rpm}` : ''}`));
          return;
        }
        const flat = await flattenLayers(ls, store);
        await writeManifest(ls, store);
        emit(o, { set: ls.set.name, backend, layers: results, flat }, () => undefined);
      } finally {
        unlock();
      }
    });

  withCommon(program.command('package'))
    .description("wrap each layer's current build into an RPM (layers that already have one are left as they are)")
    .option('-l, --layer <name...>', 'package only these layers (default: all)')
    .option('--payload <setting>', "rpm _binary_payload, e.g. w6T0L27.zstdio (default), w7T0.xzdio (release), w9T0.xzdio")
    .option('--out <dir>', "write the RPMs here instead of the store's rpms directory")
    .action(async (o: Common & { layer?: string[]; payload?: string; out?: string }) => {
      if (o.payload !== undefined && !PAYLOAD.test(o.payload)) throw new UsageError(`--payload: '${o.payload}' is not an rpm payload setting like w6T0L27.zstdio, w9T0.xzdio or w.ufdio`);
      const ls = loadLayerSet(o.layersDir, o.set);
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

  const withPublishing = (c: Command): Command =>
    c
      .option('-r, --repo <dir>', 'repository directory', DEFAULT_REPO_DIR)
      .option('--sign-key <key>', 'gpg key (id, fingerprint or e-mail, from GNUPGHOME) that signs packages and repomd.xml [env OST_IMAGES_SIGN_KEY]', process.env.OST_IMAGES_SIGN_KEY)
      .option('--unsigned', 'publish unsigned into a repository that was signed (refused otherwise)')
      .option('--url <url>', 'base URL test machines reach the repository at, for ost-images.repo [env OST_IMAGES_REPO_URL; default: the last one, else file://]', process.env.OST_IMAGES_REPO_URL);

  withPublishing(withCommon(program.command('publish')))
    .description('publish the packages of every layer of the set into a DNF repository: a new snapshot, checked, then served by one atomic switch')
    .option('--keep <n>', 'also remove old builds: keep the N newest builds of every top-level layer and every build they require')
    .option('-n, --dry-run', 'say what would be added and removed; write nothing')
    .option('--rollback', 'instead of publishing, serve again the snapshot the current one replaced')
    .action(async (o: Common & PublishCli & { keep?: string; dryRun?: boolean; rollback?: boolean }) => {
      if (o.rollback) {
        const clash = [o.keep !== undefined && '--keep', o.dryRun && '--dry-run', o.signKey && '--sign-key'].filter(Boolean);
        if (clash.length > 0) throw new UsageError(`--rollback does not go with ${clash.join(', ')}`);
        const r = await rollback(o.repo, { url: o.url, unsigned: o.unsigned });
        emit(o, r, () => undefined);
        return;
      }
      const ls = loadLayerSet(o.layersDir, o.set);
      const result = await publish(o.repo, currentRpms(ls, new Store(o.store)), { ...publishOpts(o), keep: parseKeep(o.keep), dryRun: o.dryRun });
      emit(o, result, () => printPublish(result));
    });

  withPublishing(program.command('prune'))
    .description('remove old builds from a repository without ever breaking a chain: keeps the N newest builds of every top-level layer package and every build they require, transitively')
    .requiredOption('--keep <n>', 'builds to keep of every top-level layer package')
    .option('-n, --dry-run', 'list what would be removed; write nothing')
    .option('--json', 'machine-readable result on stdout')
    .action(async (o: PublishCli & { keep: string; dryRun?: boolean; json?: boolean }) => {
      const result = await prune(o.repo, parseKeep(o.keep)!, { ...publishOpts(o), dryRun: o.dryRun });
      emit(o, result, () => printPublish(result));
    });

  program
    .command('install')
    .description('install layer packages from a repository into a scratch root with dnf (what a test machine does)')
    .argument('<packages...>', 'package names, e.g. ost-images-engine-installed')
    .option('-r, --repo <dir-or-url>', 'repository directory or URL', DEFAULT_REPO_DIR)
    .requiredOption('--root <dir>', 'install root')
    .option('--gpgcheck', `check package and repomd.xml signatures against the key published beside the repository (${PUBLIC_KEY_FILE})`)
    .option('--json', 'machine-readable result on stdout')
    .action(async (packages: string[], o: { repo: string; root: string; gpgcheck?: boolean; json?: boolean }) => {
      const r = await installInto(o.root, o.repo, packages, o.gpgcheck);
      emit(o, r, () => log.info(`installed into ${o.root}: ${r.installed.join(' ')}`));
    });

  program
    .command('verify')
    .description("check that an image's backing chain resolves and every image in it passes qemu-img check")
    .argument('<image>', 'top image of the chain')
    .option('--json', 'machine-readable result on stdout')
    .action(async (image: string, o: { json?: boolean }) => {
      const chain = await verifyChain(image);
      emit(o, chain, () => chain.forEach((c) => log.info(`ok ${c.file}${c.backing ? ` -> ${path.basename(c.backing)}` : ''}`)));
    });

  withCommon(program.command('test-boot'))
    .description("boot a layer (its current build, or any image) and wait for userspace on the serial console")
    .option('-l, --layer <name>', 'layer whose current build to boot (default: every top layer)')
    .option('-i, --image <file>', 'boot this image instead (e.g. an installed one)')
    .option('-t, --timeout <seconds>', 'give up after this long', '600')
    .option('--console-log <file>', 'where to write the console (kept on failure; default: a file in the store)')
    .option('--no-ssh', "do not log in over SSH with the root key shipped with the chain's base")
    .action(async (o: Common & { layer?: string; image?: string; timeout: string; consoleLog?: string; ssh: boolean }) => {
      const timeoutSec = Number(o.timeout);
      if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) throw new UsageError(`--timeout: '${o.timeout}' is not a positive number of seconds`);
      const images: string[] = [];
      if (o.image) {
        images.push(o.image);
      } else {
        const ls = loadLayerSet(o.layersDir, o.set);
        const store = new Store(o.store);
        for (const l of o.layer ? [o.layer] : topLayers(ls)) {
          requireLayer(ls, l);
          const rec = store.current(ls.set.name, l);
          if (!rec) throw new StepError(`layer '${l}' has no build yet`);
          images.push(imageOf(store, rec));
        }
      }
      const results = [];
      for (const image of images) results.push(await bootOne(image, timeoutSec, o.consoleLog, o.store, o.ssh));
      emit(o, results, () => undefined);
    });

  withCommon(program.command('manifest'))
    .description(`print the set's build manifest (${'<store>/<set>/manifest.json'}, rewritten by build, package and nightly), or its JSON Schema`)
    .option('--schema', 'print the JSON Schema that documents every field instead')
    .action(async (o: Common & { schema?: boolean }) => {
      if (o.schema) {
        process.stdout.write(`${JSON.stringify(MANIFEST_SCHEMA, null, 2)}\n`);
        return;
      }
      const ls = loadLayerSet(o.layersDir, o.set);
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
      const shown: { layer: string; image: string; diff: PackageDiff }[] = [];
      if (o.image) {
        shown.push({ layer: path.basename(o.image), image: o.image, diff: diffBesideImage(o.image) });
      } else {
        const ls = loadLayerSet(o.layersDir, o.set);
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

  const cache = program.command('cache').description('list and trim the layer store');

  withCommon(cache.command('ls'))
    .description("every build in the store: layer, version-release, key, current, packaged, allocated size")
    .action((o: Common) => {
      const ls = loadLayerSet(o.layersDir, o.set);
      const store = new Store(o.store);
      const rows = ls.order.flatMap((layer) => {
        const cur = store.current(ls.set.name, layer)?.release;
        return store.builds(ls.set.name, layer).map((b) => ({
          layer,
          build: `${b.version}-${b.release}`,
          key: b.key ?? null,
          current: b.release === cur,
          packaged: existsSync(path.join(store.rpmsDir(ls.set.name), rpmFileName(ls.set, layer, b))),
          allocatedMiB: Math.round(b.allocatedSize / 2 ** 20),
          parent: b.parent ? `${b.parent.layer} ${b.parent.version}-${b.parent.release}` : null,
        }));
      });
      emit(o, rows, () =>
        rows.forEach((r) => log.info(`${r.current ? '*' : ' '} ${r.layer.padEnd(20)} ${r.build}  ${(r.key ?? '-').slice(0, 12).padEnd(12)}  ${String(r.allocatedMiB).padStart(6)} MiB  ${r.packaged ? 'packaged' : ''}`)),
      );
    });

  withCommon(cache.command('gc'))
    .description('delete builds no longer needed: keeps current builds, the newest of each layer, published builds, and everything they are built on')
    .option('-k, --keep <n>', 'newest builds to keep per layer', '2')
    .option('-r, --repo <dir>', 'also keep every build whose package is published in this repository')
    .option('-n, --dry-run', 'only say what would be deleted')
    .action(async (o: Common & { keep: string; repo?: string; dryRun?: boolean }) => {
      const keep = Number(o.keep);
      if (!Number.isInteger(keep) || keep < 1) throw new UsageError(`--keep: '${o.keep}' is not a whole number of at least 1`);
      const ls = loadLayerSet(o.layersDir, o.set);
      const store = new Store(o.store);
      const unlock = await store.lock(ls.set.name);
      try {
        const builds = ls.order.flatMap((l) => store.builds(ls.set.name, l));
        const current = ls.order.map((l) => store.current(ls.set.name, l)).filter((b): b is NonNullable<typeof b> => !!b);
        const poolFiles = o.repo && existsSync(path.join(o.repo, 'packages')) ? new Set(readdirSync(path.join(o.repo, 'packages'))) : new Set<string>();
        const published = new Set(builds.filter((b) => poolFiles.has(rpmFileName(ls.set, b.layer, b))).map((b) => `${b.layer}@${b.release}`));
        const d = planGc(builds, current, { keep, published });
        if (!o.dryRun) for (const b of d.remove) store.removeBuild(b, [rpmFileName(ls.set, b.layer, b), rpmFileName(ls.set, `${b.layer}${FLAT_SUFFIX}`, b)]);
        const freed = d.remove.reduce((a, b) => a + b.allocatedSize, 0);
        emit(o, { removed: d.remove.map((b) => `${b.layer} ${b.version}-${b.release}`), kept: d.keep.length, freedBytes: freed, dryRun: !!o.dryRun }, () => {
          d.remove.forEach((b) => log.info(`${o.dryRun ? 'would delete' : 'deleted'} ${b.layer} ${b.version}-${b.release}`));
          log.info(`${d.remove.length} build(s) ${o.dryRun ? 'to delete' : 'deleted'}, ${(freed / 2 ** 20).toFixed(0)} MiB; ${d.keep.length} kept`);
        });
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
      const ls = loadLayerSet(o.layersDir, o.set);
      requireLayer(ls, o.install);
      const store = new Store(o.store);
      const stages: Record<string, number> = {};
      const time = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
        const t0 = Date.now();
        try {
          return await fn();
        } finally {
          stages[name] = (Date.now() - t0) / 1000;
        }
      };
      const digests = await resolveUpstream(ls, o.store, { offline: o.offline });
      const unlock = await store.lock(ls.set.name);
      let built;
      let packaged;
      let backend: BackendName;
      try {
        await recoverOrphans(store);
        const plan = planBuild(ls, [], currentBuilds(store, ls.set.name, ls.order), { digests });
        backend = plan.entries.some((e) => e.action === 'build') ? await chooseBackend(o.backend) : 'chroot';
        built = await time('build', async () => {
          const r = await executePlan(ls, plan, store, backend);
          await flattenLayers(ls, store);
          return r;
        });
        packaged = await time('package', () => packageLayers(ls, ls.order, store));
        await writeManifest(ls, store);
      } finally {
        unlock();
      }
      const published = await time('publish', () => publish(o.repo, currentRpms(ls, store)));
      rmSync(o.root, { recursive: true, force: true });
      const wanted = ls.set.package.default ? unqualifiedName(ls.set, o.install) : packageName(ls.set, o.install);
      const installed = await time('install', () => installInto(o.root, o.repo, [wanted]));
      const top = store.current(ls.set.name, o.install)!;
      const installedImage = path.join(o.root, ls.set.package.installDir, imageFileName(o.install, top));
      const chain = await time('verify', () => verifyChain(installedImage));
      const boot = o.boot ? await time('boot', () => bootOne(installedImage, 600, undefined, o.store)) : undefined;
      const summary = { set: ls.set.name, backend, built, packaged, published, installed, image: installedImage, chain, boot, stages };
      emit(o, summary, () => {
        log.info(`done: ${wanted} and its chain are installed in ${path.resolve(o.root)}`);
        log.info(`  image: ${installedImage}`);
        log.info(`  chain: ${chain.map((c) => path.basename(c.file)).join(' -> ')}`);
        log.info(`  stages: ${Object.entries(stages).map(([k, v]) => `${k} ${v.toFixed(0)}s`).join(', ')}`);
      });
    });

  withPublishing(withCommon(program.command('nightly')))
    .description('the nightly job: refresh upstream digests, build what changed, package, boot-test every top layer, and publish only if all of that passed; always writes a report')
    .option('--keep <n>', 'retention applied when publishing (see prune)')
    .addOption(new Option('-b, --backend <name>', 'how layer steps run').choices(['auto', 'chroot', 'guestfs']).default('auto'))
    .option('--offline', 'use the last known upstream digests instead of fetching them')
    .option('--boot-timeout <seconds>', 'per top layer', '600')
    .option('--report-dir <dir>', 'where the report (JSON and text) goes (default: <store>/reports)')
    .action(async (o: Common & PublishCli & { keep?: string; backend: 'auto' | BackendName; offline?: boolean; bootTimeout: string; reportDir?: string }) => {
      const bootTimeoutSec = Number(o.bootTimeout);
      if (!Number.isFinite(bootTimeoutSec) || bootTimeoutSec <= 0) throw new UsageError(`--boot-timeout: '${o.bootTimeout}' is not a positive number of seconds`);
      const ls = loadLayerSet(o.layersDir, o.set);
      const store = new Store(o.store);
      const reportDir = path.resolve(o.reportDir ?? path.join(store.root, 'reports'));
      const report = await nightly(ls, store, { ...publishOpts(o), keep: parseKeep(o.keep), repo: o.repo, backend: o.backend, offline: o.offline, bootTimeoutSec, reportDir });
      const files = writeReport(report, reportDir);
      emit(o, report, () => process.stderr.write(renderReport(report)));
      log.info(`report: ${files.text} (JSON: ${files.json})`);
      if (!report.ok) process.exitCode = report.failed!.exitCode;
    });

  program
    .command('remove-old')
    .description("on a test machine: remove old layer builds that dnf upgrade left installed beside the new ones, keeping the newest N of every top layer, every build a running VM has open, and everything those need")
    .option('--keep <n>', 'builds to keep of every installed top layer', '1')
    .option('--root <dir>', 'installation root (dnf --installroot)', '/')
    .option('-n, --dry-run', 'list what would be removed; remove nothing')
    .option('--json', 'machine-readable result on stdout')
    .action(async (o: { keep: string; root: string; dryRun?: boolean; json?: boolean }) => {
      const r = await removeOld(o.root, parseKeep(o.keep)!, { dryRun: o.dryRun });
      emit(o, r, () => undefined);
    });

  return program;
}

interface PublishCli {
  repo: string;
  signKey?: string;
  unsigned?: boolean;
  url?: string;
}

function publishOpts(o: PublishCli): PublishOptions {
  return { signKey: o.signKey || undefined, unsigned: o.unsigned, url: o.url || undefined };
}

function parseKeep(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(v)) throw new UsageError(`--keep: '${v}' is not a positive whole number`);
  return Number(v);
}

function printPublish(r: PublishResult): void {
  const verb = r.dryRun ? 'would' : 'did';
  if (r.dryRun) log.info(`dry run on ${r.repo} (serving snapshot ${r.snapshot || 'none'}): ${r.changed ? 'a new snapshot would be published' : 'nothing would change'}`);
  for (const f of r.added) log.info(`  ${verb} add     ${f}`);
  for (const f of r.removed) log.info(`  ${verb} remove  ${f}`);
  for (const f of r.resigned) log.info(`  ${verb} re-sign ${f}`);
}

async function bootOne(image: string, timeoutSec: number, consoleLog: string | undefined, storeDir: string, sshLogin = true) {
  const logFile = consoleLog ?? path.join(storeDir, 'console', `${path.basename(image)}.log`);
  const r = await testBoot(image, { timeoutSec, consoleLog: logFile, ssh: sshLogin });
  // The log matters when a boot fails; a passing boot's log is only kept when asked for.
  if (!consoleLog && existsSync(logFile)) rmSync(logFile);
  return r;
}

/** Commander exits 1 on a bad option; here every bad argument is bad input: exit 2. */
function exitCodesForArguments(cmd: Command): void {
  cmd.exitOverride((err) => {
    if (err.exitCode === 0) process.exit(0); // --help, --version
    throw new UsageError(err.message.replace(/^error: /, ''));
  });
  cmd.configureOutput({ writeErr: (s) => (/^error: /.test(s) ? undefined : process.stderr.write(s)) });
  cmd.commands.forEach(exitCodesForArguments);
}

export async function main(argv: string[]): Promise<void> {
  installSignalHandlers();
  try {
    const program = buildProgram();
    exitCodesForArguments(program);
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof OstError) {
      log.error(err.message);
      if (isDebug() && err.stack) process.stderr.write(`${err.stack}\n`);
      process.exitCode = err.exitCode;
    } else {
      log.error(`unexpected failure: ${(err as Error)?.stack ?? String(err)}`);
      process.exitCode = EXIT_FAILED;
    }
  }
}
