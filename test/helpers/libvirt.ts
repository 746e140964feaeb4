// libvirt for the tests: used as it is when it answers; otherwise virtlogd and libvirtd are
// started here without systemd (as on these machines) and stopped again afterwards. Only what this
// helper started is stopped, by the pids in its own pid files.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

const URI = 'qemu:///system';

function answers(): boolean {
  return spawnSync('virsh', ['-c', URI, '-q', 'version'], { stdio: 'ignore', timeout: 30_000 }).status === 0;
}

/** A live process of that name (a zombie left by an init that does not reap is none). */
function running(program: string): boolean {
  for (const pid of readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === program && pidAlive(Number(pid))) return true;
    } catch {
      // Gone meanwhile.
    }
  }
  return false;
}

/** Alive and not a zombie (a daemon's parent may be an init that does not reap it at once). */
function pidAlive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Makes sure qemu:///system answers. Returns what undoes it: stopping the daemons started here
 * (nothing, when libvirt was already running).
 */
export async function ensureLibvirt(workDir: string): Promise<() => Promise<void>> {
  if (answers()) return async () => undefined;
  for (const p of ['virsh', 'libvirtd', 'virtlogd']) {
    if (spawnSync('sh', ['-c', `command -v ${p}`], { stdio: 'ignore', env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } }).status !== 0) {
      throw new Error(`${p} is missing: install libvirt-daemon-system and libvirt-clients (scripts/install-deps)`);
    }
  }
  mkdirSync(workDir, { recursive: true });
  const started: { name: string; pidFile: string }[] = [];
  // libvirtd cannot start a domain with a console log without virtlogd ("virtlogd-sock: No such file").
  if (!running('virtlogd')) {
    const pidFile = path.join(workDir, 'virtlogd.pid');
    execFileSync('virtlogd', ['--daemon', '--pid-file', pidFile]);
    started.push({ name: 'virtlogd', pidFile });
  }
  if (!running('libvirtd')) {
    const pidFile = path.join(workDir, 'libvirtd.pid');
    execFileSync('libvirtd', ['--daemon', '--pid-file', pidFile]);
    started.push({ name: 'libvirtd', pidFile });
  }
  await until(answers, 60_000, 'libvirtd to answer on qemu:///system');
  return async () => {
    // libvirtd first: it holds virtlogd's connections.
    for (const s of [...started].reverse()) {
      if (!existsSync(s.pidFile)) continue;
      const pid = Number(readFileSync(s.pidFile, 'utf8').trim());
      if (!(pid > 0) || !pidAlive(pid)) continue;
      process.kill(pid, 'SIGTERM');
      await until(() => !pidAlive(pid), 60_000, `${s.name} (${pid}) to stop`);
    }
  };
}

/** Every domain name, running or not. */
export function domains(): string[] {
  return execFileSync('virsh', ['-c', URI, '-q', 'list', '--all', '--name'], { encoding: 'utf8' }).split('\n').map((l) => l.trim()).filter(Boolean);
}

/** libvirt's state word for a domain, or undefined when there is no such domain. */
export function domainState(name: string): string | undefined {
  const r = spawnSync('virsh', ['-c', URI, '-q', 'domstate', name], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Removes domains a failed test may have left (destroy, undefine), by name. */
export function removeDomains(names: string[]): void {
  for (const n of names) {
    if (domainState(n) === undefined) continue;
    spawnSync('virsh', ['-c', URI, '-q', 'destroy', n], { stdio: 'ignore' });
    spawnSync('virsh', ['-c', URI, '-q', 'undefine', n], { stdio: 'ignore' });
  }
}
