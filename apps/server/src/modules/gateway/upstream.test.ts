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
          { firstByteMs: 5000, signal: new Cancel() },
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
    const pending = client.send({ method: "GET", url: `${origin}/slow`, headers: {} }, { firstByteMs: 5000, signal: cancel });
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
      { firstByteMs: 5000, signal: cancel },
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
    client.send({ method: "GET", url: `${origin}${path}`, headers: {} }, { firstByteMs: 5000, signal });

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
    // A reader through `addListener` (or `once`) makes it flow as `on` does.
    const other = await send("/whole");
    const pieces: Buffer[] = [];
    other.body.addListener("data", (chunk: Buffer) => pieces.push(chunk));
    await new Promise((resolve) => other.body.once("end", resolve));
    expect(Buffer.concat(pieces).toString()).toBe("data: 1\n\ndata: 2\n\n");
  });

  it("hands its events to one reader's methods instead of listeners (readWith), close to both, and none once the reader lets go", async () => {
    routes.set("/direct", (_request, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.end("data: 1\n\ndata: 2\n\n");
    });
    /** A reader that records its calls, and whose body's listeners would record theirs. */
    const recorder = (body: Awaited<ReturnType<typeof send>>["body"]) => {
      const calls: string[] = [];
      for (const event of ["data", "end", "error", "close"]) body.on(event, () => calls.push(`listener ${event}`));
      // The listener for `data` set the body flowing: the reader takes over before the microtask that hands it over.
      body.readWith({
        onData: (chunk) => calls.push(`data ${Buffer.from(chunk as Uint8Array).toString()}`),
        onEnd: () => calls.push("end"),
        onError: (error) => calls.push(`error ${error.message}`),
        onClose: () => calls.push("close"),
      });
      return calls;
    };
    const whole = await send("/direct");
    await new Promise((resolve) => setTimeout(resolve, 20));
    const calls = recorder(whole.body);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(calls).toEqual(["data data: 1\n\ndata: 2\n\n", "end", "listener close", "close"]);

    // Destroyed before its end: closed, with the error when there is one; the upstream client, which
    // watches the close, lets go of the cancel.
    routes.set("/direct-endless", (_request, response) => {
      response.writeHead(200);
      response.write("data: first\n\n");
    });
    const cancel = new Cancel();
    const cut = await send("/direct-endless", cancel);
    const cutCalls = recorder(cut.body);
    await new Promise((resolve) => setTimeout(resolve, 20));
    cut.body.destroy(new Error("gone"));
    expect(cutCalls).toEqual(["data data: first\n\n", "error gone", "listener close", "close"]);
    expect(cancel.listenerCount("abort")).toBe(0);
    const plainCut = await send("/direct-endless", cancel);
    const plainCutCalls = recorder(plainCut.body);
    await new Promise((resolve) => setTimeout(resolve, 20));
    plainCut.body.destroy();
    expect(plainCutCalls).toEqual(["data data: first\n\n", "listener close", "close"]);
    expect(cancel.listenerCount("abort")).toBe(0);

    // Let go of: the body's events go to the listeners again.
    const released = await send("/direct-endless");
    const releasedCalls = recorder(released.body);
    await new Promise((resolve) => setTimeout(resolve, 20));
    released.body.readWith(undefined);
    released.body.destroy();
    expect(releasedCalls).toEqual(["data data: first\n\n", "listener close"]);
  });

  it("pauses the upstream from inside its reader's data handler, and resumes it without losing or reordering a byte", async () => {
    const pieces = 2000;
    const piece = (n: number) => `${String(n).padStart(6, "0")}${"x".repeat(16 * 1024 - 6)}`;
    let written = 0;
    routes.set("/large", (_request, response) => {
      response.writeHead(200);
      const more = () => {
        while (written < pieces) {
          written++;
          if (!response.write(piece(written))) return void response.once("drain", more);
        }
        response.end();
      };
      more();
    });
    const response = await send("/large");
    const parts: Buffer[] = [];
    const ended = new Promise((resolve) => response.body.on("end", resolve));
    let pausedOnce = false;
    response.body.on("data", (chunk: Buffer) => {
      parts.push(chunk);
      if (!pausedOnce) {
        // As the stream reader pauses: inside the handler, so the push that delivered this piece answers false.
        pausedOnce = true;
        response.body.pause();
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Paused: nothing more reached the reader, and the server could not write everything (32 MiB).
    expect(parts).toHaveLength(1);
    expect(written).toBeLessThan(pieces);
    response.body.resume();
    await ended;
    let expected = "";
    for (let n = 1; n <= pieces; n++) expected += piece(n);
    expect(Buffer.concat(parts).toString() === expected).toBe(true);
  });

  it("aborts the upstream request when destroyed before its end, and when its cancel fires, and lets go of the cancel", async () => {
    routes.set("/endless", (_request, response) => {
      response.writeHead(200);
      response.write("data: first\n\n");
    });
    const before = closed.filter((path) => path === "/endless").length;
    const first = new Cancel();
    const destroyed = await send("/endless", first);
    const closes: string[] = [];
    destroyed.body.on("close", () => closes.push("close"));
    destroyed.body.destroy();
    expect(closes).toEqual(["close"]);
    expect(first.listenerCount("abort")).toBe(0);

    const cancel = new Cancel();
    const cancelled = await send("/endless", cancel);
    const reading = readAll(cancelled.body);
    cancel.abort(new Error("client closed the request"));
    await expect(reading).rejects.toThrow("client closed the request");
    expect(cancel.listenerCount("abort")).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The server saw both connections end: neither request went back to the pool half read.
    expect(closed.filter((path) => path === "/endless").length - before).toBe(2);
  });

  it("fails a request still waiting for a connection as soon as its cancel fires", async () => {
    routes.set("/held", (_request, response) => setTimeout(() => response.end("done"), 400));
    const single = createUpstreamClient({ connections: 1 });
    const busy = single.send({ method: "GET", url: `${origin}/held`, headers: {} }, { firstByteMs: 5000, signal: new Cancel() });
    const cancel = new Cancel();
    const queued = single.send({ method: "GET", url: `${origin}/held`, headers: {} }, { firstByteMs: 5000, signal: cancel });
    const started = performance.now();
    setTimeout(() => cancel.abort(new Error("client closed the request")), 20);
    await expect(queued).rejects.toThrow("client closed the request");
    // Long before the connection it waits for is free (400 ms).
    expect(performance.now() - started).toBeLessThan(300);
    expect(cancel.listenerCount("abort")).toBe(0);
    expect(await (await busy).body.text()).toBe("done");
    await single.close();
  });

  it("reads an empty answer (204) and drops a byte order mark from a text, which reads once", async () => {
    routes.set("/empty", (_request, response) => {
      response.writeHead(204);
      response.end();
    });
    routes.set("/bom", (_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"ok":true}')]));
    });
    const empty = await send("/empty");
    expect(empty.statusCode).toBe(204);
    expect(await readAll(empty.body)).toBe("");
    const bom = await send("/bom");
    expect(JSON.parse(await bom.body.text())).toEqual({ ok: true });
    await expect(bom.body.text()).rejects.toThrow("read or closed already");
  });

  it("fails its reader and its text when the upstream breaks off mid-answer", async () => {
    routes.set("/broken", (_request, response) => {
      response.writeHead(200, { "content-length": "100" });
      response.write("data: part");
      setTimeout(() => response.socket?.destroy(), 20);
    });
    await expect(readAll((await send("/broken")).body)).rejects.toThrow(/other side closed/);
    await expect((await send("/broken")).body.text()).rejects.toThrow(/other side closed/);
  });
});
