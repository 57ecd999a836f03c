/**
 * Number formatting for the terminal view. Mirrors the status page's formatting (src/exporter/status-page/app.js)
 * so both show the same strings; money stays a decimal string and is rounded with decimal.js, never a float.
 */
import { Decimal } from 'decimal.js';

export function formatInt(n: number | null | undefined): string {
  return typeof n === 'number' ? n.toLocaleString('en-US') : '—';
}

/** "$12.35" for a dollar or more, "$0.0123" below (sub-cent LLM calls are common). Half-up rounding. */
export function formatUsd(s: string | null | undefined): string {
  if (s === null || s === undefined) return '—';
  const d = new Decimal(s);
  const digits = d.abs().gte(1) ? 2 : 4;
  const fixed = d.toFixed(digits, Decimal.ROUND_HALF_UP);
  const negative = fixed.startsWith('-') && /[1-9]/.test(fixed);
  const [ip, fp] = fixed.replace(/^-/, '').split('.');
  return (negative ? '-$' : '$') + Number(ip).toLocaleString('en-US') + '.' + fp;
}

/**
 * A cost as shown: unpriced usage is never "$0" (the same strings as the status page's formatCost). `cost` is the
 * usage API's cost_usd (null when every request of the figure had no price), `unpriced` its unpriced_requests.
 */
export function formatCost(cost: string | null | undefined, unpriced: number | undefined): string {
  if (cost === null || cost === undefined) return (unpriced ?? 0) > 0 ? 'unpriced' : '—';
  return (unpriced ?? 0) > 0 ? `${formatUsd(cost)} + unpriced` : formatUsd(cost);
}

export function formatPercent(ratio: number | null | undefined): string {
  return ratio === null || ratio === undefined ? '—' : `${Math.round(ratio * 100)}%`;
}

export function formatDuration(ms: number): string {
  if (ms <= 0) return 'no time';
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m ${s % 60}s`;
}
