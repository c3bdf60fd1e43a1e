import { newId } from "../apps/server/src/infra/ids.ts";
import { DAY_MS, HOUR_MS, ROLLUP_METRICS, type RollupDimension, type RollupRow } from "../apps/server/src/modules/usage/rollups.ts";

/**
 * Synthetic usage for the statistics benchmark: N records in time order, evenly over `days` days before `end`,
 * skewed towards a few tokens and models as real traffic is. Rollups are summed in typed arrays (the
 * same sums the recorder's batch writer makes, without building N objects); every `rawEvery`-th
 * record is also handed out as a raw usage_logs row.
 */

export interface UsageShape {
  records: number;
  days: number;
  users: number;
  tokens: number;
  models: number;
  channels: number;
  /** Exclusive end, aligned to an hour. */
  end: number;
  seed: number;
}

/** A usage_logs row without its tenant, which each database's sink fills in. */
export interface RawUsage {
  id: string;
  user_id: string;
  token_id: string;
  channel_id: string;
  provider: string;
  endpoint: string;
  requested_model: string;
  upstream_model: string;
  stream: number;
  status_code: number;
  error: string | null;
  latency_ms: number;
  ttft_ms: number | null;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  attempts: number;
  request_id: string;
  cost_micro_usd: number;
  created_at: string;
}

export const MODEL_NAMES = [
  "gpt-4o-mini",
  "gpt-4o",
  "gpt-4.1",
  "gpt-4.1-mini",
  "o3-mini",
  "claude-sonnet-4",
  "claude-haiku-3.5",
  "claude-opus-4",
  "gemini-2.5-pro",
  "gemini-2.5-flash",
  "deepseek-chat",
  "deepseek-reasoner",
  "qwen-max",
  "glm-4.6",
  "moonshot-v1-32k",
];

/** mulberry32: small, fast and the same sequence for the same seed. */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface Entities {
  users: string[];
  tokens: string[];
  models: string[];
  channels: string[];
}

export function entitiesOf(shape: UsageShape): Entities {
  const ids = (count: number) => Array.from({ length: count }, () => newId());
  const models = Array.from(
    { length: shape.models },
    (_, index) => MODEL_NAMES[index % MODEL_NAMES.length] + (index >= MODEL_NAMES.length ? `-${index}` : ""),
  );
  return { users: ids(shape.users), tokens: ids(shape.tokens), models, channels: ids(shape.channels) };
}

const METRICS = ROLLUP_METRICS.length;

export interface GeneratedUsage {
  /** Sums per hour and slot (tenant, then users, tokens, models, channels), ROLLUP_METRICS in order. */
  hourly: Float64Array;
  hours: number;
  start: number;
  slots: { dimension: RollupDimension; value: string | null }[];
  raw: number;
}

/** Runs the generator; `onRaw` receives raw rows in chunks and may write them before generation goes on. */
export async function generateUsage(
  shape: UsageShape,
  entities: Entities,
  rawEvery: number,
  onRaw: (rows: RawUsage[]) => Promise<void>,
): Promise<GeneratedUsage> {
  const next = random(shape.seed);
  const hours = shape.days * 24;
  const start = shape.end - hours * HOUR_MS;
  const slots: GeneratedUsage["slots"] = [{ dimension: "tenant", value: null }];
  const userBase = slots.length;
  for (const value of entities.users) slots.push({ dimension: "user", value });
  const tokenBase = slots.length;
  for (const value of entities.tokens) slots.push({ dimension: "token", value });
  const modelBase = slots.length;
  for (const value of entities.models) slots.push({ dimension: "model", value });
  const channelBase = slots.length;
  for (const value of entities.channels) slots.push({ dimension: "channel", value });
  const width = slots.length * METRICS;
  const hourly = new Float64Array(hours * width);
  const prices = entities.models.map((_, index) => [0.15 + (index % 5) * 0.6, 0.6 + (index % 5) * 2.4]);
  const metrics = new Float64Array(METRICS);
  const touched = new Int32Array(5);
  let buffer: RawUsage[] = [];
  let raw = 0;

  // Records come in time order, as they do in service: each hour gets its share, spread through it.
  let hour = -1;
  let hourEnd = 0;
  let inHour = 0;
  let hourCount = 1;
  for (let index = 0; index < shape.records; index += 1) {
    while (index >= hourEnd) {
      hour += 1;
      const first = hourEnd;
      hourEnd = Math.floor((shape.records * (hour + 1)) / hours);
      hourCount = hourEnd - first;
      inHour = 0;
    }
    const time = start + hour * HOUR_MS + Math.floor(((inHour + next()) * HOUR_MS) / hourCount);
    inHour += 1;
    const token = Math.floor(entities.tokens.length * next() ** 2);
    const user = token % entities.users.length;
    const model = Math.floor(entities.models.length * next() ** 1.5);
    const channel = (model * 3 + (next() < 0.7 ? 0 : 1)) % entities.channels.length;
    const roll = next();
    const status = roll < 0.02 ? 502 : roll < 0.03 ? 429 : 200;
    const failed = status >= 400;
    const prompt = failed ? 0 : 50 + Math.floor(next() * 2000);
    const completion = failed ? 0 : 10 + Math.floor(next() * 800);
    const cached = !failed && next() < 0.3 ? Math.floor(prompt / 2) : 0;
    const latency = 150 + Math.floor(next() * 3000);
    const price = prices[model] ?? [1, 1];
    const cost = Math.round(prompt * (price[0] ?? 1) + completion * (price[1] ?? 1));
    // ROLLUP_METRICS order: requests, errors, prompt, completion, cached, total, cost, latency.
    metrics[0] = 1;
    metrics[1] = failed ? 1 : 0;
    metrics[2] = prompt;
    metrics[3] = completion;
    metrics[4] = cached;
    metrics[5] = prompt + completion;
    metrics[6] = cost;
    metrics[7] = latency;
    const base = Math.floor((time - start) / HOUR_MS) * width;
    touched[0] = 0;
    touched[1] = userBase + user;
    touched[2] = tokenBase + token;
    touched[3] = modelBase + model;
    touched[4] = channelBase + channel;
    for (let dimension = 0; dimension < 5; dimension += 1) {
      const offset = base + (touched[dimension] ?? 0) * METRICS;
      for (let metric = 0; metric < METRICS; metric += 1) hourly[offset + metric] = (hourly[offset + metric] ?? 0) + (metrics[metric] ?? 0);
    }
    if (index % rawEvery !== 0) continue;
    const modelName = entities.models[model] ?? "";
    buffer.push({
      id: newId(),
      user_id: entities.users[user] ?? "",
      token_id: entities.tokens[token] ?? "",
      channel_id: entities.channels[channel] ?? "",
      provider: "openai",
      endpoint: "/v1/chat/completions",
      requested_model: modelName,
      upstream_model: modelName,
      stream: index % 2,
      status_code: status,
      error: failed ? "upstream answered an error" : null,
      latency_ms: latency,
      ttft_ms: failed ? null : Math.floor(latency / 3),
      prompt_tokens: prompt,
      completion_tokens: completion,
      cached_tokens: cached,
      reasoning_tokens: 0,
      total_tokens: prompt + completion,
      attempts: 1,
      request_id: `bench-${index}`,
      cost_micro_usd: cost,
      created_at: new Date(time).toISOString(),
    });
    raw += 1;
    if (buffer.length >= 20_000) {
      await onRaw(buffer);
      buffer = [];
    }
  }
  if (buffer.length > 0) await onRaw(buffer);
  return { hourly, hours, start, slots, raw };
}

/** The rollup rows of the generated usage for one tenant: every non-empty hour, and UTC days summed from hours. */
export function rollupRowsOf(generated: GeneratedUsage, tenantId: string): RollupRow[] {
  const { hourly, hours, start, slots } = generated;
  const width = slots.length * METRICS;
  const rows: RollupRow[] = [];
  const days = new Map<string, RollupRow>();
  for (let hour = 0; hour < hours; hour += 1) {
    const hourStart = start + hour * HOUR_MS;
    const dayStart = new Date(Math.floor(hourStart / DAY_MS) * DAY_MS).toISOString();
    for (let slot = 0; slot < slots.length; slot += 1) {
      const offset = hour * width + slot * METRICS;
      if ((hourly[offset] ?? 0) === 0) continue;
      const info = slots[slot];
      if (!info) continue;
      const value = info.value ?? tenantId;
      const row = {
        tenant_id: tenantId,
        period: "hour",
        bucket_start: new Date(hourStart).toISOString(),
        dimension: info.dimension,
        dimension_value: value,
      } as RollupRow;
      ROLLUP_METRICS.forEach((metric, index) => {
        row[metric] = hourly[offset + index] ?? 0;
      });
      rows.push(row);
      const key = `${dayStart}|${slot}`;
      let day = days.get(key);
      if (!day) {
        day = { ...row, period: "day", bucket_start: dayStart };
        days.set(key, day);
      } else for (const metric of ROLLUP_METRICS) day[metric] += row[metric];
    }
  }
  return [...rows, ...days.values()];
}
