// ssh: logs in to a booted test VM with the key pair shipped in the base package.
import { run } from './run.js';

export function sshArgs(port: number, key: string, command: string[]): string[] {
  return [
    '-i', key,
    '-p', String(port),
    // A throwaway VM on a forwarded port: its host key is new every boot and not worth recording.
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=10',
    '-o', 'LogLevel=ERROR',
    'root@127.0.0.1',
    '--',
    ...command,
  ];
}

export async function ssh(port: number, key: string, command: string[]): Promise<{ ok: boolean; output: string }> {
  const r = await run('ssh', sshArgs(port, key, command), { allowFailure: true, timeoutMs: 60_000 });
  return { ok: r.exitCode === 0, output: `${r.stdout}${r.stderr}` };
}
