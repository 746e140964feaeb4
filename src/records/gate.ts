// What a pipeline's boot job found, as it is kept in staging (repository/gate.ts) for the
// promotion (jobs/promote.ts): the exact builds booted, and whether they passed.

export interface GateRecord {
  schema: 1;
  run: string;
  set: string;
  /** The layer booted: a top layer, or a flattened variant `<layer>-flat`. */
  layer: string;
  /** The input key of the layer build booted. */
  key: string;
  /** Which repository the chain was installed from. */
  repo: 'staging' | 'production';
  /** The packages installed and booted, base first (one for a flattened variant). */
  nvrs: string[];
  ok: boolean;
  /** Until userspace on the console (0 when the result was taken from an earlier run). */
  seconds: number;
  /** Until a root login over SSH with the set's key worked. */
  sshSeconds?: number;
  finished: string;
  host: string;
  error?: string;
  /** The last lines of the serial console, when the boot failed. */
  consoleTail?: string;
  /** The run whose boot of these very builds passed, when this record repeats its result. */
  reusedFrom?: string;
}

/**
 * A run id names a directory of gate records: the CI engine's pipeline or run id (digits), or any
 * name of letters, digits, '.', '_' and '-'.
 */
export const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
