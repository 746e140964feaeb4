// Reaching a booted guest: a free port on 127.0.0.1 to forward its sshd to, waiting until a root
// login with the set's key works, and the console tail a failure shows. Shared by test-boot (QEMU
// run directly) and `ost-images vm` (QEMU run by libvirt).
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { abortSignal, checkInterrupted } from '../core/interrupt.js';
import { ssh } from '../tools/ssh.js';

/** A TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice), not in `exclude`. */
export async function freePort(exclude: ReadonlySet<number> = new Set()): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    if (!exclude.has(port)) return port;
  }
  throw new Error('no free TCP port on 127.0.0.1 outside the excluded ones after 50 tries');
}

/** The last lines of a serial console, without colour codes and carriage returns. */
export function consoleTail(output: string, lines = 25): string {
  return output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '').split('\n').slice(-lines).join('\n');
}

export type SshWait = { ok: true; seconds: number; hostname: string } | { ok: false; reason: string };

/**
 * Tries `ssh root@127.0.0.1 hostname` with `key` until it works or `deadline` (epoch ms) passes.
 * A forwarded port accepts connections before the guest's sshd listens (QEMU's user network takes
 * them and resets them), so a failed attempt says nothing until the deadline; `stillRunning`, asked
 * after each failed attempt, ends the wait early with its reason when the VM is gone.
 */
export async function waitForSsh(o: {
  port: number;
  key: string;
  deadline: number;
  startedAt: number;
  intervalMs?: number;
  stillRunning?: () => Promise<string | undefined>;
}): Promise<SshWait> {
  let last = '';
  for (;;) {
    checkInterrupted();
    const s = await ssh(o.port, o.key, ['hostname']);
    if (s.ok) return { ok: true, seconds: (Date.now() - o.startedAt) / 1000, hostname: s.output.trim() };
    last = s.output.trim();
    const gone = await o.stillRunning?.();
    if (gone) return { ok: false, reason: gone };
    if (Date.now() >= o.deadline) {
      return { ok: false, reason: `no SSH login on 127.0.0.1:${o.port} within ${Math.round((o.deadline - o.startedAt) / 1000)}s (last attempt: ${last || 'no output'})` };
    }
    await sleep(o.intervalMs ?? 1000, undefined, { signal: abortSignal }).catch(() => undefined);
  }
}
