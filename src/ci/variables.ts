// The pipeline-level variables both engines set: the site settings the jobs' commands read.
// Every variable is always written (an empty value means "none"), so a job never depends on
// whether a runner happens to export one. Two came later and are written only when the site sets
// them, OST_IMAGES_KEEP_USED_WITHIN and OST_IMAGES_MIRROR (OPTIONAL_VARIABLES): the committed
// files of every site that sets neither stay byte for byte what they were. The price: without
// them, a runner that exports either one gives its promotion jobs that value.
import type { CiSettings } from './settings.js';
import type { Entry } from './yaml-out.js';

/**
 * `run` is the engine's expression for the pipeline run's id; `spell` writes a value the way the
 * engine needs it (GitLab: see gitlab.ts).
 */
export function variableEntries(run: string, s: CiSettings, spell: (name: string, value: string) => unknown = (_n, v) => v): Entry[] {
  const entries: Entry[] = [
    { key: 'OST_IMAGES', value: s.cli, comment: 'How a job runs the CLI.' },
    { key: 'OST_IMAGES_STAGING', value: s.staging.dir, comment: 'The staging repository: a directory every runner shares, and the URL runners read it at.' },
    { key: 'OST_IMAGES_STAGING_URL', value: s.staging.url },
    { key: 'OST_IMAGES_REPO', value: s.repo.dir, comment: 'The production repository test machines install from, and its URL.' },
    { key: 'OST_IMAGES_REPO_URL', value: s.repo.url },
    {
      key: 'OST_IMAGES_SIGN_KEY',
      value: s.signKey,
      comment:
        "The NAME of the gpg key promotion signs with ('' publishes unsigned). The secret key is\n" +
        "never written here: it comes from the CI's secret store (GitLab: a protected, masked CI/CD\n" +
        "variable; GitHub: an encrypted secret) into the runner's GNUPGHOME.",
    },
    { key: 'OST_IMAGES_KEEP', value: String(s.keep), comment: 'Builds of every top layer that retention keeps.' },
    ...(s.keepUsedWithin !== undefined
      ? [{ key: 'OST_IMAGES_KEEP_USED_WITHIN', value: String(s.keepUsedWithin), comment: 'Retention also keeps every build downloaded within this many days (ost-images usage).' }]
      : []),
    ...(s.mirrors.length > 0
      ? [{ key: 'OST_IMAGES_MIRROR', value: s.mirrors.join(' '), comment: 'Mirrors a promotion pushes production to afterwards, separated by spaces; one that fails\nfails the job, but production stays promoted.' }]
      : []),
    { key: 'OST_IMAGES_UPLOAD', value: s.upload, comment: "A command that uploads into staging, for runners without its file system ('' for none)." },
    { key: 'OST_IMAGES_RUN', value: run, comment: "The pipeline run's id: which staged builds belong to this run." },
  ];
  return entries.map((e) => ({ ...e, value: spell(e.key, e.value as string) }));
}
