import { z } from 'zod';

const DURATION_UNITS_MILLIS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const DURATION_RE = /^(\d{1,12})(ms|s|m|h|d|w)$/;

/** Parses `500ms`, `15s`, `30m`, `2h`, `7d`, `1w` (one integer and one unit) into milliseconds; undefined if malformed. */
export function parseDurationMillis(text: string): number | undefined {
  const m = DURATION_RE.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * DURATION_UNITS_MILLIS[m[2]!]!;
}

/** Renders milliseconds back in the largest unit that divides them exactly (`604800000` → `7d`). */
export function formatDurationMillis(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = DURATION_UNITS_MILLIS[unit]!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A duration written as a string with a unit, e.g. `15s` or `7d`. Parses to milliseconds. */
const DURATION_EXPECTED = 'expected a duration such as "500ms", "15s", "30m", "2h", "7d" or "1w"';
export const durationSchema = z
  .string({ error: DURATION_EXPECTED })
  .regex(DURATION_RE, { error: DURATION_EXPECTED })
  .transform((s) => parseDurationMillis(s)!)
  .meta({ expected: 'a duration such as "500ms", "15s", "30m", "2h", "7d" or "1w"' });

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1_000,
  mb: 1_000_000,
  gb: 1_000_000_000,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};
const BYTES_RE = /^(\d{1,12})\s*(b|kb|mb|gb|kib|mib|gib)?$/i;

/** Parses `1048576`, `512KiB`, `4MiB`, `10MB` into bytes; undefined if malformed. */
export function parseBytes(text: string): number | undefined {
  const m = BYTES_RE.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * BYTE_UNITS[(m[2] ?? '').toLowerCase()]!;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A byte size: a positive integer (bytes) or a string with a unit (`4MiB`, `512KiB`, `10MB`). */
export const byteSizeSchema = z
  .union([
    z.number().int().positive(),
    z
      .string()
      .regex(BYTES_RE, { error: 'expected a size such as 1048576, "512KiB", "4MiB" or "10MB"' })
      .refine((s) => (parseBytes(s) ?? 0) > 0, { error: 'expected a size greater than 0' }),
  ], { error: 'expected a size: a positive integer (bytes) or a string such as "512KiB", "4MiB" or "10MB"' })
  .transform((v) => (typeof v === 'number' ? v : parseBytes(v)!))
  .meta({ expected: 'a size: a positive integer (bytes) or a string such as "512KiB", "4MiB" or "10MB"' });
