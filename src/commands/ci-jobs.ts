// The commands the generated pipeline's jobs run (`ci layer`, `ci boot`): registered on the `ci`
// group by registerCi (commands/ci.ts). They land here, beside the generators, so that the
// pipeline and the commands it calls are one group in --help. Locations come from the variables
// the pipeline sets; each flag overrides its variable. The work is in jobs/ci.ts, imported when a
// command runs.
import { Command, Option } from 'commander';
import { PRODUCTION, STAGING, given, repoLocation, runId } from '../ci/locations.js';
import { SECONDS, parseNumber } from '../input/numbers.js';
import type { BackendName } from '../tools/host.js';
import { Store } from '../store/store.js';
import { emit, layerSet, withCommon, type Common } from './common.js';

interface RepoCli {
  staging?: string;
  stagingUrl?: string;
  repo?: string;
  repoUrl?: string;
}

const withRepos = (c: Command): Command =>
  c
    .option('--staging <dir>', 'the staging repository directory (a file system the runners share) [env OST_IMAGES_STAGING]')
    .option('--staging-url <url>', 'how this runner reads staging, http(s):// or file:// [env OST_IMAGES_STAGING_URL; default: file:// of --staging]')
    .option('--repo <dir>', 'the production repository directory [env OST_IMAGES_REPO]')
    .option('--repo-url <url>', 'how this runner reads production [env OST_IMAGES_REPO_URL; default: file:// of --repo]');

function repos(o: RepoCli) {
  const env = process.env;
  return {
    staging: repoLocation(given(o.staging, env.OST_IMAGES_STAGING), given(o.stagingUrl, env.OST_IMAGES_STAGING_URL), STAGING),
    production: repoLocation(given(o.repo, env.OST_IMAGES_REPO), given(o.repoUrl, env.OST_IMAGES_REPO_URL), PRODUCTION),
  };
}

export function registerCiJobs(ci: Command): void {
  withRepos(withCommon(ci.command('layer')))
    .description("a pipeline's layer job: if the layer's key is in staging or production, say so and stop; otherwise fetch its parents from there, build the layer, package it (and its flattened variant) and publish into staging (or run the upload command)")
    .requiredOption('-l, --layer <name>', 'the layer this job builds')
    .option('--upload <command>', 'instead of publishing into the staging directory, run this with the package files as arguments; it must make them appear in staging [env OST_IMAGES_UPLOAD]')
    .addOption(new Option('-b, --backend <name>', 'how layer steps run').choices(['auto', 'chroot', 'guestfs']).default('auto'))
    .option('--offline', 'use the last known upstream digests instead of fetching them')
    .option('--run <id>', "the pipeline run: its jobs plan with one view of the upstream mirrors, recorded in staging by the first [env OST_IMAGES_RUN; without it, this job's own view]")
    .action(async (o: Common & RepoCli & { layer: string; upload?: string; backend: 'auto' | BackendName; offline?: boolean; run?: string }) => {
      const where = repos(o);
      const upload = given(o.upload, process.env.OST_IMAGES_UPLOAD);
      const run = given(o.run, process.env.OST_IMAGES_RUN);
      const ls = await layerSet(o);
      const { layerJob } = await import('../jobs/ci.js');
      const r = await layerJob(ls, o.layer, new Store(o.store), { ...where, upload, backend: o.backend, offline: o.offline, run: run === undefined ? undefined : runId(run) });
      emit(o, r, () => undefined);
    });

  withRepos(withCommon(ci.command('boot')))
    .description("a pipeline's boot job: install the layer's chain (exactly this pipeline's builds) from staging or production with dnf into a scratch root, boot it, log in over SSH, and record the result in staging for promotion")
    .requiredOption('-l, --layer <name>', 'a top layer, or a flattened variant <layer>-flat')
    .option('--run <id>', "the pipeline run (the CI engine's pipeline id) [env OST_IMAGES_RUN]")
    .option('--boot-timeout <seconds>', 'until a root login over SSH', '600')
    .option('--offline', 'use the last known upstream digests instead of fetching them')
    .action(async (o: Common & RepoCli & { layer: string; run?: string; bootTimeout: string; offline?: boolean }) => {
      const where = repos(o);
      const run = runId(given(o.run, process.env.OST_IMAGES_RUN));
      const timeoutSec = parseNumber('--boot-timeout', o.bootTimeout, SECONDS);
      const ls = await layerSet(o);
      const { bootJob } = await import('../jobs/ci.js');
      const r = await bootJob(ls, o.layer, new Store(o.store), { ...where, run, timeoutSec, offline: o.offline });
      emit(o, r, () => undefined);
    });
}
