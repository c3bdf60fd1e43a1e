import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cancel } from "./cancel.ts";
import { createUpstreamClient } from "./upstream.ts";

/** A real upstream that holds each request 150 ms and counts the connections open at once. */
describe("upstream client", () => {
  let server: http.Server;
  let origin: string;
  let open = 0;
  let peak = 0;

  beforeAll(async () => {
    server = http.createServer((_request, response) => setTimeout(() => response.end("{}"), 150));
    server.on("connection", (socket) => {
      open++;
      peak = Math.max(peak, open);
      socket.on("close", () => open--);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function concurrently(connections: number, count: number) {
    peak = 0;
    const client = createUpstreamClient({ connections });
    const send = () =>
      client
        .send(
          { method: "POST", url: `${origin}/v1/chat/completions?x=1`, headers: {}, body: "{}" },
          { firstByteMs: 5000, totalMs: 5000, signal: new Cancel() },
        )
        .then((response) => response.body.text());
    await Promise.all(Array.from({ length: count }, send));
    await client.close();
    return peak;
  }

  it("caps the connections to one origin at LYSS_UPSTREAM_CONNECTIONS, and has no cap at 0", async () => {
    expect(await concurrently(2, 6)).toBe(2);
    expect(await concurrently(0, 6)).toBe(6);
  });

  it("aborts a request when its Cancel fires", async () => {
    const client = createUpstreamClient();
    const cancel = new Cancel();
    const pending = client.send(
      { method: "GET", url: `${origin}/slow`, headers: {} },
      { firstByteMs: 5000, totalMs: 5000, signal: cancel },
    );
    setTimeout(() => cancel.abort(), 20);
    await expect(pending).rejects.toThrow();
    await client.close();
  });

  it("opens no connection for a request aborted while its answer streams (undici patched: patches/)", async () => {
    // A streaming upstream: the head and one chunk, then nothing until the client goes.
    const streaming = http.createServer((_request, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write("data: {}\n\n");
    });
    let accepted = 0;
    streaming.on("connection", () => accepted++);
    await new Promise<void>((resolve) => streaming.listen(0, "127.0.0.1", resolve));
    const client = createUpstreamClient();
    const cancel = new Cancel();
    const response = await client.send(
      { method: "POST", url: `http://127.0.0.1:${(streaming.address() as AddressInfo).port}/v1/chat/completions`, headers: {}, body: "{}" },
      { firstByteMs: 5000, totalMs: 5000, signal: cancel },
    );
    const reading = (async () => {
      for await (const _chunk of response.body) cancel.abort();
    })();
    await expect(reading).rejects.toThrow();
    await new Promise((resolve) => setTimeout(resolve, 200));
    // undici 7 re-queued the aborted request and connected again for it, leaving an idle connection.
    expect(accepted).toBe(1);
    await client.close();
    streaming.closeAllConnections();
    await new Promise((resolve) => streaming.close(resolve));
  });
});
