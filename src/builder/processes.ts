// Finds processes whose root directory is inside a guest root (daemons a package's maintainer
// script started despite policy-rc.d, gpg-agent from apt-key, ...). They would keep the mount busy
// and so leak the mount, the loop device and the daemon beneath it.
import { readdirSync, readlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { log } from '../core/log.js';

function pidsRootedUnder(root: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const r = readlinkSync(`/proc/${entry}/root`);
      if (r === root || r.startsWith(root + '/')) pids.push(Number(entry));
    } catch {
      // Gone already, or not ours to inspect.
    }
  }
  return pids;
}

export async function killProcessesUnder(root: string): Promise<void> {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    const pids = pidsRootedUnder(root);
    if (pids.length === 0) return;
    log.warn(`stopping ${pids.length} process(es) left running in ${root}: ${pids.join(' ')}`);
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // Exited meanwhile.
      }
    }
    await sleep(signal === 'SIGTERM' ? 1000 : 200);
  }
}
