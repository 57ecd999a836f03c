import type { ServiceTier } from './types.js';

const TIER_MAP: ReadonlyMap<string, ServiceTier> = new Map([
  ['standard', 'standard'],
  ['default', 'standard'],
  ['auto', 'standard'],
  ['on_demand', 'standard'],
  ['batch', 'batch'],
  ['flex', 'flex'],
  ['priority', 'priority'],
  ['scale', 'priority'],
]);

/**
 * Maps a provider's service-tier string (OpenAI `service_tier`: default/auto/flex/priority/scale, or our own
 * names) to a ServiceTier; undefined for an unknown value, so the caller can decide (and count) it.
 */
export function parseServiceTier(raw: string | undefined): ServiceTier | undefined {
  if (raw === undefined) return undefined;
  return TIER_MAP.get(raw.trim().toLowerCase());
}

export const SERVICE_TIERS: readonly ServiceTier[] = ['standard', 'batch', 'flex', 'priority'];
