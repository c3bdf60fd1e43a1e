import type { Usage } from "@lyss/llm";
import type { Kysely } from "kysely";
import type { Database, ModelPricesTable } from "../../db/schema.ts";
import type { EventBus } from "../../infra/bus.ts";
import { matchesPattern } from "../gateway/router.ts";
import { DEFAULT_PRICES } from "./defaults.ts";

export const PRICES_TOPIC = "pricing.changed";

export interface Price {
  model: string;
  input_per_mtok: number;
  output_per_mtok: number;
  cached_input_per_mtok: number | null;
  per_request: number;
  source: "default" | "platform" | "tenant";
}

const fromDefaults: Price[] = DEFAULT_PRICES.map((price) => ({
  model: price.model,
  input_per_mtok: price.input,
  output_per_mtok: price.output,
  cached_input_per_mtok: price.cached ?? null,
  per_request: 0,
  source: "default",
}));

/** The most specific price for a model: an exact name beats a pattern, a longer pattern a shorter one. */
export function pick(prices: Price[], model: string): Price | undefined {
  const exact = prices.find((price) => price.model === model);
  if (exact) return exact;
  return prices
    .filter((price) => price.model.includes("*") && matchesPattern(price.model, model))
    .sort((a, b) => b.model.length - a.model.length)[0];
}

/** Integer micro-USD for a usage at a price, with the multiplier (tenant × group) applied. */
export function costOf(price: Price | undefined, usage: Usage | undefined, multiplier: number): number {
  if (!price) return 0;
  const prompt = usage?.prompt_tokens ?? 0;
  const cached = Math.min(usage?.prompt_tokens_details?.cached_tokens ?? 0, prompt);
  const cachedPrice = price.cached_input_per_mtok ?? price.input_per_mtok;
  const tokens =
    ((prompt - cached) * price.input_per_mtok + cached * cachedPrice + (usage?.completion_tokens ?? 0) * price.output_per_mtok) / 1_000_000;
  return Math.round((tokens + price.per_request) * multiplier);
}

const toPrice = (row: ModelPricesTable, source: Price["source"]): Price => ({
  model: row.model,
  input_per_mtok: Number(row.input_per_mtok),
  output_per_mtok: Number(row.output_per_mtok),
  cached_input_per_mtok: row.cached_input_per_mtok === null ? null : Number(row.cached_input_per_mtok),
  per_request: Number(row.per_request),
  source,
});

/** Prices in memory: the defaults, the platform's overrides and each tenant's, reloaded on change. */
export function createPriceBook(db: Kysely<Database>, bus: EventBus) {
  let platform: Price[] = [];
  let tenants = new Map<string, Price[]>();

  async function load() {
    const rows = await db.selectFrom("model_prices").selectAll().execute();
    platform = rows.filter((row) => row.tenant_id === null).map((row) => toPrice(row, "platform"));
    const next = new Map<string, Price[]>();
    for (const row of rows) {
      if (row.tenant_id) next.set(row.tenant_id, [...(next.get(row.tenant_id) ?? []), toPrice(row, "tenant")]);
    }
    tenants = next;
  }
  const unsubscribe = bus.subscribe(PRICES_TOPIC, () => void load().catch(() => undefined));

  return {
    load,
    /** The price a tenant pays for a model, if any is known. */
    priceFor(tenantId: string, model: string): Price | undefined {
      return pick(tenants.get(tenantId) ?? [], model) ?? pick(platform, model) ?? pick(fromDefaults, model);
    },
    /** Every price a tenant sees, the most specific source winning for each model name. */
    list(tenantId: string | null): Price[] {
      const byModel = new Map<string, Price>();
      for (const price of [...fromDefaults, ...platform, ...(tenantId ? (tenants.get(tenantId) ?? []) : [])])
        byModel.set(price.model, price);
      return [...byModel.values()].sort((a, b) => a.model.localeCompare(b.model));
    },
    changed() {
      bus.publish(PRICES_TOPIC);
    },
    close: unsubscribe,
  };
}

export type PriceBook = ReturnType<typeof createPriceBook>;
