// libvirt for the tests: used as it is when it answers; otherwise virtlogd and libvirtd are
// started here without systemd (as on these machines) and stopped again afterwards. Only what this
// helper started is stopped, by the pids in its own pid files. Every virsh call is asynchronous
// (test/helpers/run.ts): a busy libvirtd must not block the test worker.
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { output, run } from './run.js';

const URI = 'qemu:///system';

async function answers(): Promise<boolean> {
  return (await run('virsh', ['-c', URI, '-q', 'version'])).code === 0;
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

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Makes sure qemu:///system answers. Returns what undoes it: stopping the daemons started here
 * (nothing, when libvirt was already running).
 */
export async function ensureLibvirt(workDir: string): Promise<() => Promise<void>> {
  if (await answers()) return async () => undefined;
  for (const p of ['virsh', 'libvirtd', 'virtlogd']) {
    if ((await run('sh', ['-c', `command -v ${p}`], { env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } })).code !== 0) {
      throw new Error(`${p} is missing: install libvirt-daemon-system and libvirt-clients (scripts/install-deps)`);
    }
  }
  mkdirSync(workDir, { recursive: true });
  const started: { name: string; pidFile: string }[] = [];
  // libvirtd cannot start a domain with a console log without virtlogd ("virtlogd-sock: No such file").
  if (!running('virtlogd')) {
    const pidFile = path.join(workDir, 'virtlogd.pid');
    await output('virtlogd', ['--daemon', '--pid-file', pidFile]);
    started.push({ name: 'virtlogd', pidFile });
  }
  if (!running('libvirtd')) {
    const pidFile = path.join(workDir, 'libvirtd.pid');
    await output('libvirtd', ['--daemon', '--pid-file', pidFile]);
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
export async function domains(): Promise<string[]> {
  return (await output('virsh', ['-c', URI, '-q', 'list', '--all', '--name'])).split('\n').map((l) => l.trim()).filter(Boolean);
}

/** libvirt's state word for a domain, or undefined when there is no such domain. */
export async function domainState(name: string): Promise<string | undefined> {
  const r = await run('virsh', ['-c', URI, '-q', 'domstate', name]);
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/** Removes domains a failed test may have left (destroy, undefine), by name. */
export async function removeDomains(names: string[]): Promise<void> {
  for (const n of names) {
    if ((await domainState(n)) === undefined) continue;
    await run('virsh', ['-c', URI, '-q', 'destroy', n]);
    await run('virsh', ['-c', URI, '-q', 'undefine', n]);
  }
}

/** Destroys a transient domain (virsh create) by name; nothing when there is none. */
export async function destroyDomain(name: string): Promise<void> {
  await run('virsh', ['-q', '-c', URI, 'destroy', name]);
}
