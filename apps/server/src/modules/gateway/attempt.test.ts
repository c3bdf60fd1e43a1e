import { describe, expect, it } from "vitest";
import type { RuntimeChannel } from "../channels/catalog.ts";
import { contextFor } from "./attempt.ts";

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
