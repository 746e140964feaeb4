// The nightly as an engine-neutral job graph, computed from layer sets alone (pure): what runs,
// and what each job waits for. The renderers (gitlab.ts, github.ts) only spell it in their
// engine's syntax; neither decides anything about the graph.
//
//   layer job    one per layer of every selected set; needs exactly its parent layer's job, so
//                the engine runs the layer DAG with as much parallelism as it allows (siblings
//                at once), not stage by stage.
//   boot job     one per top layer and per flattened variant; needs the job of the layer it boots.
//   promote job  one per set; needs every layer and boot job of that set, so it runs only when
//                all of them passed (a failure anywhere in the set promotes nothing of it).
//
// Jobs never hand files to each other: a layer job publishes into the staging repository and its
// children fetch from there (layers are hundreds of MB to GB; CI artifacts would copy each several
// times). The commands the jobs run are the CLI's own (`ci layer`, `ci boot`, `promote`).
import type { LayerSet } from '../definitions/types.js';
import { FLAT_SUFFIX } from '../definitions/naming.js';
import { topLayers } from '../plan/plan.js';
import { shellWord } from './yaml-out.js';

export type JobKind = 'layer' | 'boot' | 'gate' | 'promote';

export interface CiJob {
  /** Unique and stable: `layer/<set>/<layer>`, `boot/<set>/<layer>`, `gate/<set>/<n>`, `promote/<set>`. */
  id: string;
  kind: JobKind;
  set: string;
  /** The layer a layer job builds or a boot job boots (`<layer>-flat` for a flattened variant). */
  layer?: string;
  /** A gate's number within its set, from 1. */
  gate?: number;
  /** Ids of the jobs that must pass first. */
  needs: string[];
}

export interface JobGraph {
  /** The selected sets, in the order given. */
  sets: string[];
  /** Per set: layer jobs parents first, then boot jobs, then gates, then promote. */
  jobs: CiJob[];
  /**
   * The layers directory the jobs read, as given to the generator (a relative one resolves in the
   * job's checkout); absent: the CLI's default, the `layers/` beside the CLI the job runs.
   */
  layersDir?: string;
}

export const jobId = {
  layer: (set: string, layer: string) => `layer/${set}/${layer}`,
  boot: (set: string, layer: string) => `boot/${set}/${layer}`,
  gate: (set: string, n: number) => `gate/${set}/${n}`,
  promote: (set: string) => `promote/${set}`,
};

/** The job graph of the given sets (each already loaded and validated), read from `layersDir` when not the default. */
export function jobGraph(sets: LayerSet[], layersDir?: string): JobGraph {
  const jobs: CiJob[] = [];
  for (const ls of sets) {
    const set = ls.set.name;
    const ofSet: CiJob[] = [];
    for (const layer of ls.order) {
      const parent = ls.layers.get(layer)!.parent;
      ofSet.push({ id: jobId.layer(set, layer), kind: 'layer', set, layer, needs: parent === undefined ? [] : [jobId.layer(set, parent)] });
    }
    // Top layers are what consumers install; a flattened variant is a separate image of the same
    // chain, packaged by its layer's job, and booted on its own.
    const booted = [...topLayers(ls).map((l) => ({ layer: l, of: l })), ...[...ls.set.flatten].sort().map((l) => ({ layer: `${l}${FLAT_SUFFIX}`, of: l }))];
    for (const b of booted) ofSet.push({ id: jobId.boot(set, b.layer), kind: 'boot', set, layer: b.layer, needs: [jobId.layer(set, b.of)] });
    jobs.push(...ofSet, { id: jobId.promote(set), kind: 'promote', set, needs: ofSet.map((j) => j.id) });
  }
  return { sets: sets.map((s) => s.set.name), jobs, ...(layersDir !== undefined ? { layersDir } : {}) };
}

/**
 * The graph with no job needing more than `max` others: a job over the limit needs gate jobs
 * instead, each needing at most `max` of its original needs (and gates of gates when even the
 * gates are too many). A gate does nothing but pass, so the job still runs only when everything
 * it needed passed. GitLab refuses a pipeline whose `needs:` lists exceed its limit (50).
 */
export function limitNeeds(g: JobGraph, max: number): JobGraph {
  if (max < 2) throw new Error(`limitNeeds: a limit of ${max} cannot be met with gates`);
  const gatesPerSet = new Map<string, number>();
  const jobs: CiJob[] = [];
  for (const job of g.jobs) {
    let needs = job.needs;
    while (needs.length > max) {
      const next: string[] = [];
      for (let i = 0; i < needs.length; i += max) {
        const n = (gatesPerSet.get(job.set) ?? 0) + 1;
        gatesPerSet.set(job.set, n);
        const gate: CiJob = { id: jobId.gate(job.set, n), kind: 'gate', set: job.set, gate: n, needs: needs.slice(i, i + max) };
        jobs.push(gate);
        next.push(gate.id);
      }
      needs = next;
    }
    jobs.push({ ...job, needs });
  }
  return { ...g, jobs };
}

/** A job's readable name, the same in GitLab and GitHub: what pipeline graphs and logs show. */
export function jobName(job: CiJob): string {
  switch (job.kind) {
    case 'layer':
      return `${job.set} ${job.layer}`;
    case 'boot':
      return `${job.set} ${job.layer} boot`;
    case 'gate':
      return `${job.set} promote gate ${job.gate}`;
    case 'promote':
      return `${job.set} promote`;
  }
}

/**
 * The command a job runs (after the site's setup command); '' for a gate, which only waits. With a
 * layers directory the pipeline was generated from (not the default), every command names it:
 * otherwise a CLI that is not the checkout's own (`cli: ost-images`, an absolute path) would read
 * the sets beside itself, not the ones the pipeline was generated from.
 */
export function commandOf(job: CiJob, layersDir?: string): string {
  // Set and layer names are [a-z0-9._+-] (validated): safe as shell words without quoting.
  const dir = layersDir !== undefined ? ` --layers-dir ${shellWord(layersDir)}` : '';
  switch (job.kind) {
    case 'layer':
      return `$OST_IMAGES ci layer --set ${job.set} --layer ${job.layer}${dir}`;
    case 'boot':
      return `$OST_IMAGES ci boot --set ${job.set} --layer ${job.layer}${dir}`;
    case 'promote':
      return `$OST_IMAGES promote --set ${job.set}${dir}`;
    case 'gate':
      return '';
  }
}

/** The settings every job reads, as pipeline-level variables, in the order they are written. */
export const VARIABLES = [
  'OST_IMAGES',
  'OST_IMAGES_STAGING',
  'OST_IMAGES_STAGING_URL',
  'OST_IMAGES_REPO',
  'OST_IMAGES_REPO_URL',
  'OST_IMAGES_SIGN_KEY',
  'OST_IMAGES_KEEP',
  'OST_IMAGES_UPLOAD',
  'OST_IMAGES_RUN',
] as const;

/** Written only when the site sets them (variables.ts), right after OST_IMAGES_KEEP, in this order. */
export const OPTIONAL_VARIABLES = ['OST_IMAGES_KEEP_USED_WITHIN', 'OST_IMAGES_MIRROR'] as const;
