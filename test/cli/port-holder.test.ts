import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describePortHolder, findPortHolder, listeningInodes } from '../../src/cli/port-holder.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
// Port 0x10E6 = 4326. Row 1 listens (0A); row 2 is an established connection on the same port (01).
const TABLE =
  HEADER +
  '   0: 0100007F:10E6 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 555001 1 0000000000000000 100 0 0 10 0\n' +
  '   1: 0100007F:10E6 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 555002 1 0000000000000000 20 4 30 10 -1\n';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fake /proc: net/tcp plus one process whose fd 7 is the listening socket. */
function fakeProc(table: string, cmdline: string): string {
  const root = mkdtempSync(join(tmpdir(), 'tm-fake-proc-'));
  dirs.push(root);
  mkdirSync(join(root, 'net'));
  writeFileSync(join(root, 'net', 'tcp'), table);
  mkdirSync(join(root, '4242', 'fd'), { recursive: true });
  symlinkSync('socket:[555001]', join(root, '4242', 'fd', '7'));
  symlinkSync('/dev/null', join(root, '4242', 'fd', '0'));
  writeFileSync(join(root, '4242', 'cmdline'), cmdline);
  return root;
}

describe('port holder (from /proc)', () => {
  it('reads listening sockets only, by port', () => {
    expect(listeningInodes(TABLE, 4326)).toEqual(['555001']);
    expect(listeningInodes(TABLE, 4327)).toEqual([]);
  });

  it('ignores malformed, truncated and hostile tables', () => {
    for (const t of ['', 'garbage', HEADER + '0: zz 0A', HEADER + ' 0: 0100007F:10E6 0 0A a b c d e f\n', '\u0000'.repeat(1000), HEADER + 'x '.repeat(100_000)]) {
      expect(listeningInodes(t, 4326)).toEqual([]);
    }
  });

  it('finds the process holding the socket and its command line', () => {
    const root = fakeProc(TABLE, 'node\0server.js\0--port\u00004326\0');
    expect(findPortHolder(4326, root)).toEqual({ pid: 4242, command: 'node server.js --port 4326' });
    expect(findPortHolder(9999, root)).toBeUndefined();
  });

  it('a listener whose process is not visible gives null, not a guess', () => {
    const root = fakeProc(TABLE.replace('555001', '777777'), 'node');
    expect(findPortHolder(4326, root)).toBeNull();
  });

  it('no /proc at all gives undefined', () => {
    expect(findPortHolder(4326, join(tmpdir(), 'tm-no-such-proc-dir'))).toBeUndefined();
  });

  it('names this process for a port it really holds', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      expect(describePortHolder(port)).toMatch(new RegExp(`^ by process ${process.pid} \\(.+\\)$`));
    } finally {
      server.close();
    }
  });
});
