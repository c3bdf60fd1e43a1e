import http from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createAccessToken, createChannel, createTestApp, listen, setupAdmin, type TestApp } from "../../test/test-app.ts";

/** 2,000 frames of 16 KB of text: 32 MB, more than the sockets between the upstream and the client hold. */
const FRAMES = 2000;
const textOf = (n: number) => `${String(n).padStart(6, "0")}${"x".repeat(16 * 1024 - 6)}`;
const chunk = (delta: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  `data: ${JSON.stringify({
    id: "chatcmpl-large",
    object: "chat.completion.chunk",
    created: 1_700_000_000,
    model: "gpt-4o-mini",
    choices: [{ index: 0, delta, finish_reason: null }],
    ...extra,
  })}\n\n`;

describe("a stream to a client that reads slower than the upstream sends", () => {
  let app: TestApp;
  let upstream: http.Server;
  let written = 0;
  let baseUrl: string;
  let key: string;

  beforeEach(async () => {
    written = 0;
    // An upstream that writes as fast as its socket takes the frames, one write each.
    upstream = http.createServer((_request, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(chunk({ role: "assistant", content: "" }));
      const more = () => {
        while (written < FRAMES) {
          written++;
          if (!response.write(chunk({ content: textOf(written) }))) return void response.once("drain", more);
        }
        const usage = { prompt_tokens: 3, completion_tokens: FRAMES, total_tokens: FRAMES + 3 };
        response.end(
          `${chunk({}, { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}${chunk({}, { choices: [], usage })}data: [DONE]\n\n`,
        );
      };
      more();
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    app = await createTestApp();
    const admin = await setupAdmin(app);
    await createChannel(app, admin.token, admin.tenant.id, {
      name: "large",
      provider: "openai-compatible",
      base_url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      credentials: { api_key: "sk-upstream" },
      models: ["gpt-4o-mini"],
    });
    key = (await createAccessToken(app, admin.token, admin.tenant.id)).key;
    baseUrl = await listen(app);
  });
  afterEach(async () => {
    await app.close();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  it("holds the upstream back while the client does not read, then relays every frame in order", async () => {
    const answer = await request(`${baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "a lot" }], stream: true }),
    });
    expect(answer.statusCode).toBe(200);
    // The client reads nothing for a while: the relay waits for its socket, and the upstream for the relay.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(FRAMES);

    const text = await answer.body.text();
    const contents = text
      .split("\n\n")
      .filter((frame) => frame.startsWith("data: {"))
      .map((frame) => (JSON.parse(frame.slice(6)) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? "");
    const said = contents.join("");
    expect(said.length).toBe(FRAMES * 16 * 1024);
    for (let n = 1; n <= FRAMES; n += 199) expect(said.slice((n - 1) * 16 * 1024, n * 16 * 1024)).toBe(textOf(n));
    expect(said.slice(-16 * 1024)).toBe(textOf(FRAMES));
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
    expect(written).toBe(FRAMES);
  });
});
