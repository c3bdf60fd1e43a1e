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
    const reading = new Promise((resolve, reject) => {
      response.body.on("data", () => cancel.abort());
      response.body.on("error", reject);
      response.body.on("end", resolve);
    });
    await expect(reading).rejects.toThrow(/aborted/i);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // undici 7 re-queued the aborted request and connected again for it, leaving an idle connection.
    expect(accepted).toBe(1);
    await client.close();
    streaming.closeAllConnections();
    await new Promise((resolve) => streaming.close(resolve));
  });
});

/** The upstream client's response body against a real server: held, paused, ended, broken and destroyed. */
describe("upstream response body", () => {
  let server: http.Server;
  let origin: string;
  /** What each path answers. */
  const routes = new Map<string, (request: http.IncomingMessage, response: http.ServerResponse) => void>();
  const closed: string[] = [];

  beforeAll(async () => {
    server = http.createServer((request, response) => {
      request.on("close", () => closed.push(request.url ?? ""));
      routes.get(request.url ?? "")?.(request, response);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const client = createUpstreamClient();
  afterAll(() => client.close());
  const send = (path: string, signal = new Cancel()) =>
    client.send({ method: "GET", url: `${origin}${path}`, headers: {} }, { firstByteMs: 5000, totalMs: 5000, signal });

  /** Everything a body's `data` events carry, until its end or its error. */
  const readAll = (body: Awaited<ReturnType<typeof send>>["body"]) =>
    new Promise<string>((resolve, reject) => {
      const parts: Buffer[] = [];
      body.on("data", (chunk: Buffer) => parts.push(chunk));
      body.on("end", () => resolve(Buffer.concat(parts).toString()));
      body.on("error", reject);
    });

  it("holds what came before its reader, hands it over in order, then ends and closes; skips an interim answer", async () => {
    routes.set("/whole", (_request, response) => {
      response.writeEarlyHints({ link: "</style.css>; rel=preload" });
      response.writeHead(200, { "Content-Type": "text/event-stream", "X-Upstream": "yes" });
      response.end("data: 1\n\ndata: 2\n\n");
    });
    const response = await send("/whole");
    expect(response.statusCode).toBe(200);
    expect(response.header("x-upstream")).toBe("yes");
    expect(response.header("content-type")).toBe("text/event-stream");
    expect(response.header("retry-after")).toBeUndefined();
    // The whole answer is in before anyone reads it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const events: string[] = [];
    response.body.on("close", () => events.push("close"));
    response.body.on("end", () => events.push("end"));
    expect(await readAll(response.body)).toBe("data: 1\n\ndata: 2\n\n");
    expect(events).toEqual(["end", "close"]);
    expect(response.body.readableEnded).toBe(true);
    expect(await (await send("/whole")).body.text()).toBe("data: 1\n\ndata: 2\n\n");
  });

  it("pauses the upstream while its reader does, and resumes it without losing or reordering a byte", async () => {
    const piece = "x".repeat(16 * 1024);
    let written = 0;
    routes.set("/large", (_request, response) => {
      response.writeHead(200);
      const more = () => {
        while (written < 400) {
          written++;
          if (!response.write(`${String(written).padStart(6, "0")}${piece}`)) return void response.once("drain", more);
        }
        response.end();
      };
      more();
    });
    const response = await send("/large");
    let text = "";
    const ended = new Promise((resolve) => response.body.on("end", resolve));
    response.body.on("data", (chunk: Buffer) => {
      text += chunk.toString();
    });
    response.body.pause();
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Paused: the server could not write it all (its socket and ours fill up, then it waits).
    expect(written).toBeLessThan(400);
    response.body.resume();
    await ended;
    expect(text.length).toBe(400 * (6 + piece.length));
    for (let i = 0; i < 400; i += 57)
      expect(text.slice(i * (6 + piece.length), i * (6 + piece.length) + 6)).toBe(String(i + 1).padStart(6, "0"));
  });

  it("aborts the upstream request when destroyed before its end, and when its cancel fires", async () => {
    routes.set("/endless", (_request, response) => {
      response.writeHead(200);
      response.write("data: first\n\n");
    });
    const destroyed = await send("/endless");
    const closes: string[] = [];
    destroyed.body.on("close", () => closes.push("close"));
    destroyed.body.destroy();
    expect(destroyed.body.destroyed).toBe(true);
    expect(closes).toEqual(["close"]);

    const cancel = new Cancel();
    const cancelled = await send("/endless", cancel);
    const reading = readAll(cancelled.body);
    cancel.abort(new Error("client closed the request"));
    await expect(reading).rejects.toThrow("client closed the request");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closed.filter((path) => path === "/endless")).toHaveLength(2);
  });

  it("fails its reader and its text when the upstream breaks off mid-answer", async () => {
    routes.set("/broken", (_request, response) => {
      response.writeHead(200, { "content-length": "100" });
      response.write("data: part");
      setTimeout(() => response.socket?.destroy(), 20);
    });
    await expect(readAll((await send("/broken")).body)).rejects.toThrow();
    await expect((await send("/broken")).body.text()).rejects.toThrow();
  });
});
