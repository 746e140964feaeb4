// A real OpenSSH server for a test: sshd as a child process on 127.0.0.1, with its own
// configuration, host key, authorized key and client key in a directory of the test, so mirrors
// over ssh (`--to root@127.0.0.1:/dir`) run exactly as on a real mirror host. No systemd: the test
// starts it (`-D -e`: in the foreground, logging to stderr) and stops it, and everything the
// server forked for its sessions (a remote `rsync --server` among them).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { freePort } from '../../src/consume/guest-ssh.js';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Debian and Fedora both install it here; sshd re-executes itself and insists on an absolute path. */
const SSHD = '/usr/sbin/sshd';

export interface Sshd {
  port: number;
  /** The private key the server accepts for every user (root included). */
  clientKey: string;
  /** A known_hosts file holding the server's host key under `[127.0.0.1]:PORT`. */
  knownHosts: string;
  /** The server's AuthorizedKeysFile: it is read at every login, so a test can revoke the key. */
  authorizedKeys: string;
  /**
   * The remote shell a user would give `--rsh` or RSYNC_RSH to reach this server: its port, the
   * key, the host key checked (never "accept anything"), and no prompt ever.
   */
  rsh: string;
  /** The same without the key: for a key held by an agent. */
  rshWithoutKey: string;
  /** What sshd logged so far. */
  log: () => string;
  /** Stops the server and whatever it forked for sessions still open. */
  stop: () => Promise<void>;
}

/** Every process below `pid` (its children, theirs, ...), read from /proc. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      // The command name (field 2) is in parentheses and may hold spaces: the ppid follows the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

async function keygen(file: string, comment: string): Promise<void> {
  await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
}

/**
 * Starts sshd in `dir` (made if missing). Ready when it has logged "Server listening" and one
 * `ssh ... true` with the client key has succeeded.
 */
export async function startSshd(dir: string): Promise<Sshd> {
  mkdirSync(dir, { recursive: true });
  // sshd refuses to start without its privilege-separation directory, a fixed path compiled in
  // (systemd's unit makes it as RuntimeDirectory; nothing does here). Made as the unit makes it
  // and left in place: any other sshd on the host uses the same directory.
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });
  const hostKey = path.join(dir, 'host_key');
  const clientKey = path.join(dir, 'client_key');
  await keygen(hostKey, 'ost-images-test-host');
  await keygen(clientKey, 'ost-images-test-client');
  const authorizedKeys = path.join(dir, 'authorized_keys');
  writeFileSync(authorizedKeys, readFileSync(`${clientKey}.pub`), { mode: 0o600 });
  const knownHosts = path.join(dir, 'known_hosts');

  let child: ChildProcess | undefined;
  let stderr = '';
  let port = 0;
  // A free port can be taken by someone else between asking and binding: then sshd says so and
  // exits, and we try another.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    const config = path.join(dir, 'sshd_config');
    writeFileSync(
      config,
      [
        'ListenAddress 127.0.0.1',
        `Port ${port}`,
        `HostKey ${hostKey}`,
        `PidFile ${path.join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        'PermitRootLogin prohibit-password',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        // The key files live under the test's temporary tree, below the world-writable /tmp:
        // StrictModes would refuse them.
        'StrictModes no',
        'UseDNS no',
        // Nothing of the host's own sshd configuration (its Include, its Subsystem lines) applies.
        'Subsystem sftp internal-sftp',
        '',
      ].join('\n'),
    );
    stderr = '';
    const c = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const outcome = await new Promise<'listening' | 'exited'>((resolve) => {
      const onData = () => {
        if (/Server listening on 127\.0\.0\.1 port/.test(stderr)) resolve('listening');
      };
      c.stderr!.on('data', onData);
      c.on('error', (err) => {
        stderr += `${String(err)}\n`;
        resolve('exited');
      });
      c.on('exit', () => resolve('exited'));
    });
    if (outcome === 'listening') {
      child = c;
      break;
    }
    if (!/Address already in use/.test(stderr) || attempt >= 5) throw new Error(`sshd did not start:\n${stderr}`);
  }
  const hostPub = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostPub}\n`);
  const base = ['ssh', '-p', String(port), '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes'];
  const withKey = [...base, '-o', 'IdentitiesOnly=yes', '-i', clientKey];
  const exited = new Promise<void>((resolve) => (child!.exitCode !== null || child!.signalCode !== null ? resolve() : child!.on('exit', () => resolve())));
  const server: Sshd = {
    port,
    clientKey,
    knownHosts,
    authorizedKeys,
    rsh: withKey.join(' '),
    rshWithoutKey: base.join(' '),
    log: () => stderr,
    async stop() {
      // Sessions are forked children that outlive a listener stopped alone (as on a real host,
      // where restarting sshd keeps logins): stop them with it.
      const below = descendants(child!.pid!);
      child!.kill('SIGTERM');
      for (const pid of below) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // Ended meanwhile.
        }
      }
      await exited;
    },
  };
  try {
    await execFileP(withKey[0]!, [...withKey.slice(1), 'root@127.0.0.1', 'true']);
  } catch (err) {
    await server.stop();
    throw new Error(`ssh to the test's sshd failed: ${(err as Error).message}\nsshd said:\n${stderr}`);
  }
  return server;
}

export interface SshAgent {
  /** The agent's socket: SSH_AUTH_SOCK for whoever should use it. */
  socket: string;
  stop: () => Promise<void>;
}

/** An ssh-agent in the foreground (`-D`) holding `key`, as a CI job loads its deploy key. */
export async function startSshAgent(dir: string, key: string): Promise<SshAgent> {
  const socket = path.join(dir, 'agent.sock');
  const child = spawn('ssh-agent', ['-D', '-a', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  // It prints the SSH_AUTH_SOCK line once the socket is bound.
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (/SSH_AUTH_SOCK=/.test(out)) resolve();
    };
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      check();
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', () => reject(new Error(`ssh-agent exited: ${out}`)));
  });
  const stop = async () => {
    child.kill('SIGTERM');
    await exited;
  };
  try {
    await execFileP('ssh-add', ['-q', key], { env: { ...process.env, SSH_AUTH_SOCK: socket } });
  } catch (err) {
    await stop();
    throw err;
  }
  return { socket, stop };
}
