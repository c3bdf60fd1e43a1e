import { getProvider } from "@lyss/llm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { suiteSimulators } from "../../test/simulators.ts";
import type { RuntimeChannel } from "../channels/catalog.ts";
import { type AttemptOutcome, attempt, contextFor } from "./attempt.ts";
import { Outcome } from "./call.ts";
import { Cancel } from "./cancel.ts";
import { createChannelStats } from "./channel-stats.ts";
import { createUpstreamClient } from "./upstream.ts";

describe("contextFor", () => {
  // The fields contextFor reads; the rest of a channel plays no part.
  const channel = {
    baseUrl: "http://upstream.test",
    credentials: { api_key: "sk-test" },
    mapping: { smart: "gpt-4o" } as Record<string, string>,
    extraHeaders: {},
  } as unknown as RuntimeChannel;
  const raw = Buffer.from('{"model":"smart","input":"a"}');

  it("hands the adapter the client's text only when the channel knows the model by its public name", () => {
    expect(contextFor(channel, "smart", raw)).toMatchObject({ model: "gpt-4o", rawBody: undefined });
    expect(contextFor(channel, "gpt-4o-mini", raw)).toMatchObject({ model: "gpt-4o-mini", rawBody: raw });
    expect(contextFor(channel, "gpt-4o-mini").rawBody).toBeUndefined();
  });
});

/**
 * The relays read outcomes in optimized code; one whose fields differ from those the code has met is
 * a shape it cannot handle, and V8 throws the code away. Objects with the same fields in the same
 * order share their hidden class.
 */
describe("outcomes all have one shape", () => {
  const [sim] = suiteSimulators();
  const upstream = createUpstreamClient();
  const stats = createChannelStats();
  let channel: RuntimeChannel;

  beforeAll(() => {
    channel = {
      id: "ch-1",
      tenantId: "t-1",
      baseUrl: sim.url,
      credentials: { api_key: "sk-test" },
      mapping: {},
      extraHeaders: {},
      timeoutMs: 5000,
      firstByteTimeoutMs: 5000,
      provider: getProvider("openai"),
    } as unknown as RuntimeChannel;
  });
  afterAll(() => upstream.close());

  const send = (model: string, signal = new Cancel()) => {
    const { request } = channel.provider.chat.request({ model, messages: [{ role: "user", content: "hi" }] }, contextFor(channel, model));
    return attempt(upstream, stats, channel, request, signal);
  };

  it("an answer, a failure to retry elsewhere, the caller's error and a cancelled attempt", async () => {
    sim.fail({ model: "retry-me" }, { status: 503 });
    sim.fail({ model: "bad-request" }, { status: 400 });
    sim.fail({ model: "slow" }, { delayMs: 2000 });
    const cancel = new Cancel();
    const aborted = send("slow", cancel);
    setTimeout(() => cancel.abort(), 50);
    const outcomes: AttemptOutcome[] = [await send("fine"), await send("retry-me"), await send("bad-request"), await aborted];
    expect(outcomes.map((outcome) => outcome.kind)).toEqual(["response", "retry", "caller_error", "aborted"]);
    const first = outcomes[0] as Extract<AttemptOutcome, { kind: "response" }>;
    await first.response.body.text();
    for (const outcome of outcomes) expect(Object.keys(outcome)).toEqual(Object.keys(first));
  });

  it("and so do the outcomes a call records", () => {
    const keys = (outcome: Outcome) => Object.keys(outcome);
    const bare = new Outcome(undefined, 503, 2, "no channel");
    expect(keys(new Outcome(channel, 499, 1, "client closed the request"))).toEqual(keys(bare));
    expect(keys(new Outcome(channel, 200, 1, undefined, { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }, 12.5))).toEqual(
      keys(bare),
    );
  });
});
