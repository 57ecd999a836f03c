import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeAddress, describeStorage, exposureWarning, startErrorMessage } from '../../src/cli/serve-command.js';
import { validateConfig } from '../../src/config/index.js';
import { LedgerError, LedgerInUseError } from '../../src/ledger/index.js';

const TOKEN = 'x'.repeat(16);
const ledgerErrors = { LedgerError, LedgerInUseError };

describe('serve: what it prints about where it listens', () => {
  it('warns when reachable from other machines without both tokens, and says which is missing', () => {
    const none = exposureWarning('0.0.0.0', {});
    expect(none).toMatch(/^warning: listening on all interfaces without auth\.ingest_token \(TOKENMETER_INGEST_TOKEN\).*without auth\.api_token \(TOKENMETER_API_TOKEN\).*--host 127\.0\.0\.1/);
    expect(exposureWarning('::', { ingest_token: TOKEN })).toMatch(/all interfaces without auth\.api_token/);
    expect(exposureWarning('::', { ingest_token: TOKEN })).not.toContain('ingest_token');
    expect(exposureWarning('10.1.2.3', { api_token: TOKEN })).toMatch(/^warning: listening on 10\.1\.2\.3 without auth\.ingest_token/);
    expect(exposureWarning('0.0.0.0', { ingest_token: TOKEN, api_token: TOKEN })).toBeUndefined();
    for (const loopback of ['127.0.0.1', '127.0.0.53', '::1', 'localhost', '::ffff:127.0.0.1']) expect(exposureWarning(loopback, {})).toBeUndefined();
  });

  it('describes bound addresses and ledgers', () => {
    expect(describeAddress({ address: '0.0.0.0', port: 4318 })).toBe('0.0.0.0:4318 (all interfaces)');
    expect(describeAddress({ address: '::', port: 9464 })).toBe('[::]:9464 (all interfaces)');
    expect(describeAddress({ address: '127.0.0.1', port: 1 })).toBe('127.0.0.1:1');
    expect(describeStorage('./.tokenmeter/ledger')).toBe(resolve('.tokenmeter/ledger'));
    expect(describeStorage('pglite:data/pg')).toBe(`pglite:${resolve('data/pg')}`);
    expect(describeStorage('postgres://tm:s3cret@db:5432/tm')).not.toContain('s3cret');
  });
});

describe('serve: start-up errors become one line', () => {
  const config = validateConfig({ server: { host: '127.0.0.1', otlp_port: 4318, http_port: 9464 } }, 'test');
  const listenErr = (code: string, port: number) => Object.assign(new Error(`listen ${code}`), { code, syscall: 'listen', address: '127.0.0.1', port });

  it('maps listen errors to usage errors (exit 2) naming the flag and variable', () => {
    const inUse = startErrorMessage(listenErr('EADDRINUSE', 9464), config, ledgerErrors)!;
    expect(inUse.exitCode).toBe(2);
    expect(inUse.message).toMatch(/^port 9464 \(operations: .*host 127\.0\.0\.1\) is already in use.*--http-port <n> or TOKENMETER_HTTP_PORT/);
    const denied = startErrorMessage(listenErr('EACCES', 4318), config, ledgerErrors)!;
    expect(denied.exitCode).toBe(2);
    expect(denied.message).toMatch(/not allowed to listen on port 4318 .*--otlp-port <n> or TOKENMETER_OTLP_PORT/);
    expect(startErrorMessage(Object.assign(new Error('x'), { code: 'ENOTFOUND', syscall: 'getaddrinfo', hostname: 'nope' }), config, ledgerErrors)!.message).toMatch(
      /cannot listen on host "127\.0\.0\.1".*TOKENMETER_HOST/,
    );
  });

  it('a ledger held by another process names it and --storage; other ledger errors are one line with exit 1', () => {
    const held = startErrorMessage(new LedgerInUseError('in use', '/data/ledger', 999_999_999, '/data/ledger/tokenmeter.lock'), config, ledgerErrors)!;
    expect(held.exitCode).toBe(2);
    expect(held.message).toMatch(/^the ledger \/data\/ledger is already in use by another exporter \(process 999999999\).*--storage <dir> or TOKENMETER_STORAGE/);
    const other = startErrorMessage(new LedgerError('cannot lock the embedded ledger in /x: EACCES'), config, ledgerErrors)!;
    expect(other.exitCode).toBe(1);
    expect(other.message).toBe('cannot open the ledger: cannot lock the embedded ledger in /x: EACCES');
  });

  it('leaves unexpected errors alone (they are bugs: the stack helps)', () => {
    expect(startErrorMessage(new TypeError('boom'), config, ledgerErrors)).toBeUndefined();
    expect(startErrorMessage(Object.assign(new Error('x'), { code: 'EPIPE', syscall: 'write' }), config, ledgerErrors)).toBeUndefined();
  });
});
