import { Decimal } from 'decimal.js';
import { volumeDiscountUsd, type VolumeDiscounts } from '../pricing/index.js';
import type { DiscountFunction } from './ledger.js';

/** The ledger's discount function for configured volume discount tiers (`pricing.volume_discounts`). */
export function discountsFromTiers(tiersByProvider: VolumeDiscounts): DiscountFunction {
  const tiers = new Map(Object.entries(tiersByProvider));
  return (provider, prior, gross) => {
    const t = tiers.get(provider);
    return t && t.length > 0 ? volumeDiscountUsd(t, prior, gross) : new Decimal(0);
  };
}
