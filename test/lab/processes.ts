// Finding, signalling and waiting for processes through /proc. The lab's daemons are not our
// children once the command that started them has exited, so waitpid is not available.
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { sleep } from './run.ts';

const POLL_INTERVAL_MS = 100;

function readProc(pid: number, file: string): string | null {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return null;
  }
}

export function allPids(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number);
}

export function cmdlineOf(pid: number): string[] {
  const raw = readProc(pid, 'cmdline');
  return raw ? raw.split('\0').filter((arg) => arg !== '') : [];
}

export function environOf(pid: number): string[] {
  const raw = readProc(pid, 'environ');
  return raw ? raw.split('\0').filter((entry) => entry !== '') : [];
}

function statOf(pid: number): { state: string; ppid: number } | null {
  const raw = readProc(pid, 'stat');
  if (!raw) return null;
  // the command name (field 2) may contain spaces and parentheses: parse after the last ')'
  const fields = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', ppid: Number(fields[1]) };
}

/** Alive means it exists and is not a zombie: a zombie holds no resources, only its parent can reap it. */
export function isAlive(pid: number): boolean {
  const stat = statOf(pid);
  return stat !== null && stat.state !== 'Z' && stat.state !== 'X';
}

export function ancestorsOf(pid: number): Set<number> {
  const seen = new Set<number>();
  let current = pid;
  while (current > 1 && !seen.has(current)) {
    seen.add(current);
    current = statOf(current)?.ppid ?? 0;
  }
  return seen;
}

/** The inode of a process's network namespace, comparable with statSync('/run/netns/x').ino. */
export function netnsInodeOf(pid: number): number | null {
  try {
    const match = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

export function netnsInodeOfPath(file: string): number | null {
  try {
    return statSync(file).ino;
  } catch {
    return null;
  }
}

export function cgroupPathsOf(pid: number): string[] {
  const raw = readProc(pid, 'cgroup');
  if (!raw) return [];
  return raw
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(':').slice(2).join(':'));
}

export function readPidfile(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Waits until none of pids is alive; returns the ones still alive after timeoutMs. */
export async function waitForExit(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = pids.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(POLL_INTERVAL_MS);
    alive = alive.filter(isAlive);
  }
  return alive;
}

/** SIGTERM, then SIGKILL whatever is left after graceMs. Returns pids that survived even SIGKILL. */
export async function terminate(pids: number[], graceMs: number, killWaitMs = 5_000): Promise<number[]> {
  const alive = pids.filter(isAlive);
  for (const pid of alive) signal(pid, 'SIGTERM');
  const stubborn = await waitForExit(alive, graceMs);
  for (const pid of stubborn) signal(pid, 'SIGKILL');
  return waitForExit(stubborn, killWaitMs);
}
