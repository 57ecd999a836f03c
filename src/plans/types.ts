import type { Decimal } from 'decimal.js';

/** Per-period limits; an absent limit means unlimited. */
export interface PlanLimits {
  tokens?: number;
  requests?: number;
  costUsd?: Decimal;
}

export interface BillingPeriod {
  /** Inclusive. */
  start: Date;
  /** Exclusive. */
  end: Date;
}
