import { MessageChannel, receiveMessageOnPort } from "node:worker_threads";
import fc from "fast-check";
import { validate, version } from "uuid";
import { describe, expect, it } from "vitest";
import type { UsageLogsTable } from "../../db/schema.ts";
import { newId } from "../../infra/ids.ts";
import { BatchPacker, type PackedBatch, packBatch, unpackBatch } from "./batch-wire.ts";
import type { UsageBatch } from "./batch-write.ts";

const text = fc.oneof(fc.constantFrom("t1", "t2", "", "é", "日本", "gpt-4o"), fc.string({ maxLength: 8 }));
const maybe = <T>(value: fc.Arbitrary<T>) => fc.option(value, { nil: null });
const count = fc.integer({ min: 0, max: 2 ** 40 });

const record: fc.Arbitrary<UsageLogsTable> = fc.record({
  id: fc.uuid(),
  tenant_id: text,
  user_id: maybe(text),
  token_id: maybe(text),
  channel_id: maybe(text),
  provider: maybe(text),
  endpoint: text,
  requested_model: text,
  upstream_model: maybe(text),
  stream: fc.constantFrom(0, 1),
  status_code: fc.integer({ min: 100, max: 599 }),
  error: maybe(fc.string({ maxLength: 40 })),
  latency_ms: count,
  ttft_ms: maybe(count),
  prompt_tokens: count,
  completion_tokens: count,
  cached_tokens: count,
  reasoning_tokens: count,
  total_tokens: count,
  attempts: fc.integer({ min: 0, max: 10 }),
  request_id: maybe(text),
  cost_micro_usd: fc.oneof(count, fc.double({ min: 0, max: 1e12, noNaN: true })),
  created_at: fc.constant("2026-12-04T10:00:00.000Z"),
});

/** Through a real message port, as the writer thread's sink sends it. */
function across(packed: PackedBatch): PackedBatch {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(packed);
  const received = receiveMessageOnPort(port2)?.message as PackedBatch;
  port1.close();
  return received;
}

describe("usage batches packed for the writer thread", () => {
  it("arrive as the records that were packed, nulls and repeats included", () => {
    fc.assert(
      fc.property(fc.array(record, { maxLength: 30 }), fc.integer({ min: 0, max: 30 }), (records, repeats) => {
        // Runs of records that share their text, as consecutive calls of one token do.
        const all = [...records, ...records.slice(0, 1).flatMap((first) => Array.from({ length: repeats }, () => ({ ...first })))];
        const batch: UsageBatch = {
          id: "b1",
          at: "2026-12-04T10:00:01.000Z",
          counters: [{ key: "k", tenantId: "t1", delta: 2 }],
          records: all,
        };
        expect(unpackBatch(across(packBatch(batch)))).toEqual(batch);
      }),
    );
  });

  it("packed one record at a time, batch after batch, each batch keeps its own records while the packer goes on", () => {
    fc.assert(
      fc.property(fc.array(fc.array(record, { maxLength: 150 }), { minLength: 1, maxLength: 4 }), (batches) => {
        const packer = new BatchPacker();
        const taken = batches.map((records, index) => {
          for (const one of records) packer.add(one);
          return { batch: packer.take(`b${index}`, "2026-12-04T10:00:01.000Z", []), records };
        });
        expect(packer.count).toBe(0);
        for (const [index, { batch, records }] of taken.entries()) {
          expect(unpackBatch(across(batch))).toEqual({ id: `b${index}`, at: "2026-12-04T10:00:01.000Z", counters: [], records });
        }
      }),
      { numRuns: 50 },
    );
  });

  it("lists a value repeated by consecutive records in a column once", () => {
    const row = (id: string, model: string): UsageLogsTable => ({
      id,
      tenant_id: "t1",
      user_id: null,
      token_id: "k1",
      channel_id: "c1",
      provider: "p",
      endpoint: "/v1/chat/completions",
      requested_model: model,
      upstream_model: model,
      stream: 0,
      status_code: 200,
      error: null,
      latency_ms: 3,
      ttft_ms: null,
      prompt_tokens: 1,
      completion_tokens: 2,
      cached_tokens: 0,
      reasoning_tokens: 0,
      total_tokens: 3,
      attempts: 1,
      request_id: id,
      cost_micro_usd: 5,
      created_at: "2026-12-04T10:00:00.000Z",
    });
    const packed = packBatch({ id: "b", at: "x", counters: [], records: [row("r1", "m"), row("r2", "m"), row("r3", "n")] });
    // 9 text values for the first record (its id, request id and time go into bytes); then the model's change.
    expect(packed.texts).toHaveLength(9 + 2);
    // Once as the requested model, once as the upstream's.
    expect(packed.texts.filter((value) => value === "m")).toHaveLength(2);
  });

  it("keeps the values that differ with every record as bytes, not strings, unless they are not short ASCII", () => {
    const base = fc.sample(record, { numRuns: 1, seed: 7 })[0] as UsageLogsTable;
    const records = [
      { ...base, id: "0193a0c4-7f1e-7abc-8def-0123456789ab", request_id: "req-1", created_at: "2026-12-04T10:00:00.001Z" },
      { ...base, id: "0193a0c4-7f1e-7abc-8def-0123456789ac", request_id: "é-2", created_at: "2026-12-04T10:00:00.002Z" },
      { ...base, id: "0193a0c4-7f1e-7abc-8def-0123456789ad", request_id: "r".repeat(300), created_at: "2026-12-04T10:00:00.003Z" },
    ];
    const packed = packBatch({ id: "b", at: "x", counters: [], records });
    for (const value of records.flatMap((one) => [one.id, one.created_at])) expect(packed.texts).not.toContain(value);
    expect(packed.texts).not.toContain("req-1");
    expect(packed.texts).toContain("é-2");
    expect(packed.texts).toContain("r".repeat(300));
    expect(unpackBatch(across(packed)).records).toEqual(records);
  });

  it("gives a record packed without an id a fresh time-ordered UUID, made as bytes", () => {
    const base = fc.sample(record, { numRuns: 1, seed: 11 })[0] as UsageLogsTable;
    const { id: _given, ...withoutId } = base;
    const packer = new BatchPacker();
    const before = newId();
    for (let index = 0; index < 300; index++) packer.add({ ...withoutId });
    const after = newId();
    const packed = packer.take("b", "x", []);
    const records = unpackBatch(across(packed)).records;
    const ids = records.map((one) => one.id);
    expect(ids.every((id) => validate(id) && version(id) === 7)).toBe(true);
    expect(new Set(ids).size).toBe(300);
    // In the order they were made, between the ids made before and after them.
    expect([before, ...ids, after]).toEqual([before, ...ids, after].sort());
    expect(records.map(({ id: _id, ...rest }) => rest)).toEqual(records.map(() => withoutId));
    // No id string was kept in the batch's text values.
    expect(packed.texts.some((value) => value !== null && validate(value))).toBe(false);
  });
});
