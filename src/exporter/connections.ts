import { readFileSync } from 'node:fs';

/** Connections the operations port accepts at most: Prometheus, probes and a few status page viewers. */
export const OPS_MAX_CONNECTIONS = 64;
/** File descriptors kept free of OTLP connections: the operations port's connections plus the ledger and logs. */
export const RESERVED_FILES = 128;
const DEFAULT_CAP_WITHOUT_LIMIT = 4096;
const MAX_DEFAULT_CAP = 16_384;
const MIN_OTLP_CONNECTIONS = 16;

/** The soft limit on open files of this process (Linux: /proc/self/limits), or undefined when unknown/unlimited. */
export function openFileLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (!m || m[1] === 'unlimited') return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * The OTLP port's connection cap: below the open-file limit, so that a flood of (idle) connections cannot take
 * the descriptors the operations port (/healthz, /metrics), the ledger and the logs need. Throws, naming the
 * option, when a configured cap leaves too little.
 */
export function otlpConnectionCap(configured: number | undefined, fileLimit: number | undefined): number {
  const budget = fileLimit === undefined ? undefined : fileLimit - RESERVED_FILES;
  if (budget !== undefined && budget < MIN_OTLP_CONNECTIONS) {
    throw new Error(`the open-file limit of this process (${fileLimit}) is too low: raise it (ulimit -n) to at least ${RESERVED_FILES + MIN_OTLP_CONNECTIONS}`);
  }
  if (configured !== undefined) {
    if (budget !== undefined && configured > budget) {
      throw new Error(
        `server.max_connections (${configured}) must be at most the open-file limit (${fileLimit}) minus ${RESERVED_FILES} kept for the operations port, the ledger and logs: ${budget}`,
      );
    }
    return configured;
  }
  return budget === undefined ? DEFAULT_CAP_WITHOUT_LIMIT : Math.min(budget, MAX_DEFAULT_CAP);
}
