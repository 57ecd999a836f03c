/**
 * Who listens on a TCP port, best effort, from Linux's /proc: the listening sockets of /proc/net/tcp and tcp6,
 * then the process whose file descriptors include one of them. Used only to word an "already in use" error;
 * anything unreadable (another user's processes, another OS, a container boundary) just gives less detail.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface PortHolder {
  pid: number;
  /** The holder's command line, shortened (NUL separators turned into spaces). */
  command: string;
}

const TCP_LISTEN = '0A';
const MAX_COMMAND_CHARS = 120;
/** Bounds the /proc walk on a machine with very many processes. */
const MAX_PROCESSES = 5000;

/** Inodes of the sockets listening on `port`, from one /proc/net/tcp-format table. */
export function listeningInodes(table: string, port: number): string[] {
  const out: string[] = [];
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
    if (f.length < 10 || f[3] !== TCP_LISTEN) continue;
    const hexPort = f[1]!.slice(f[1]!.lastIndexOf(':') + 1);
    if (Number.parseInt(hexPort, 16) === port && /^\d+$/.test(f[9]!) && f[9] !== '0') out.push(f[9]!);
  }
  return out;
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The process listening on `port`; `null` when a listener exists but its process is not visible to us;
 * `undefined` when nothing can be found (no /proc, or no listener).
 */
export function findPortHolder(port: number, procRoot = '/proc'): PortHolder | null | undefined {
  const inodes = new Set([...listeningInodes(readOr(`${procRoot}/net/tcp`), port), ...listeningInodes(readOr(`${procRoot}/net/tcp6`), port)]);
  if (inodes.size === 0) return undefined;
  const targets = new Set([...inodes].map((i) => `socket:[${i}]`));
  let pids: string[];
  try {
    pids = readdirSync(procRoot).filter((n) => /^\d+$/.test(n)).slice(0, MAX_PROCESSES);
  } catch {
    return null;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`${procRoot}/${pid}/fd`);
    } catch {
      continue; // another user's process, or gone
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`${procRoot}/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (!targets.has(link)) continue;
      const command = readOr(`${procRoot}/${pid}/cmdline`).split('\0').filter(Boolean).join(' ');
      return { pid: Number(pid), command: command.length > MAX_COMMAND_CHARS ? `${command.slice(0, MAX_COMMAND_CHARS - 1)}…` : command };
    }
  }
  return null;
}

/** " by process 123 (node server.js)", " by a process this user cannot see", or "" when unknown. */
export function describePortHolder(port: number): string {
  let holder: PortHolder | null | undefined;
  try {
    holder = findPortHolder(port);
  } catch {
    return '';
  }
  if (holder === undefined) return '';
  if (holder === null) return ' by a process this user cannot inspect';
  // eslint-disable-next-line no-control-regex -- a hostile command line must not carry escapes into the terminal
  const command = holder.command.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return ` by process ${holder.pid}${command ? ` (${command})` : ''}`;
}
