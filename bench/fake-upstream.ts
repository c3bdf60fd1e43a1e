import http from "node:http";
import { CHUNKS, chunkFrame, streamEnd, wholeStream } from "./stream-frames.ts";

/**
 * A fast OpenAI-format upstream for the gateway benchmark (not the test simulator: this one is built for
 * speed, not correctness). POST /v1/chat/completions answers plain JSON, or with `"stream": true` 20 SSE
 * chunks (plus a usage chunk and [DONE]) in one write. Model "bench-chunked" streams the same answer as
 * a model does, one write per chunk (the next one on the next turn of the event loop), so each chunk
 * reaches the proxy as a piece of its own. Model "bench-slow" streams one chunk per second and holds the
 * stream open (up to 600 chunks) until the client goes away.
 *
 *   node --import tsx bench/fake-upstream.ts <port> [extra loopback host …]
 *
 * Prints "listening <port>" on stdout once every address listens.
 */

const created = Math.floor(Date.now() / 1000);
const chunk = (model: string, delta: Record<string, unknown>, finish: string | null) => chunkFrame(model, created, delta, finish);

const streams = new Map<string, Buffer>();
function fastStream(model: string): Buffer {
  let cached = streams.get(model);
  if (!cached) {
    cached = Buffer.from(wholeStream(model, created));
    streams.set(model, cached);
  }
  return cached;
}

const plains = new Map<string, Buffer>();
function plainAnswer(model: string): Buffer {
  let cached = plains.get(model);
  if (!cached) {
    const body = {
      id: "chatcmpl-bench",
      object: "chat.completion",
      created,
      model,
      choices: [{ index: 0, message: { role: "assistant", content: "tok ".repeat(CHUNKS) }, finish_reason: "stop" }],
      usage: { prompt_tokens: 5, completion_tokens: CHUNKS, total_tokens: 5 + CHUNKS },
    };
    cached = Buffer.from(JSON.stringify(body));
    plains.set(model, cached);
  }
  return cached;
}

/** Open slow streams; one shared timer writes a chunk to each every second. */
const slow = new Set<{ res: http.ServerResponse; model: string; sent: number }>();
setInterval(() => {
  for (const entry of slow) {
    entry.sent++;
    if (entry.sent >= 600) {
      entry.res.end(streamEnd(entry.model, created));
      slow.delete(entry);
    } else {
      entry.res.write(chunk(entry.model, { content: "tok " }, null));
    }
  }
}, 1000).unref();

const SSE_HEADERS = { "content-type": "text/event-stream", "cache-control": "no-cache" };

/** The fast stream's answer, one write per chunk, each on its own turn of the event loop. */
function chunkedStream(res: http.ServerResponse, model: string) {
  res.writeHead(200, SSE_HEADERS);
  res.write(chunk(model, { role: "assistant", content: "" }, null));
  let sent = 0;
  const next = () => {
    if (res.destroyed) return;
    if (sent++ < CHUNKS) {
      res.write(chunk(model, { content: "tok " }, null));
      setImmediate(next);
    } else {
      res.end(streamEnd(model, created));
    }
  };
  setImmediate(next);
}

function handle(req: http.IncomingMessage, res: http.ServerResponse) {
  if (req.method === "GET" && (req.url === "/v1/models" || req.url === "/models")) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        object: "list",
        data: [
          { id: "bench-model", object: "model" },
          { id: "bench-chunked", object: "model" },
          { id: "bench-slow", object: "model" },
        ],
      }),
    );
    return;
  }
  if (req.method !== "POST") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end("{}");
    return;
  }
  const parts: Buffer[] = [];
  req.on("data", (part: Buffer) => parts.push(part));
  req.on("end", () => {
    let body: { model?: string; stream?: boolean } = {};
    try {
      body = JSON.parse(Buffer.concat(parts).toString("utf8"));
    } catch {
      res.writeHead(400, { "content-type": "application/json" });
      res.end('{"error":{"message":"bad json","type":"invalid_request_error"}}');
      return;
    }
    const model = typeof body.model === "string" ? body.model : "bench-model";
    if (model === "bench-slow") {
      res.writeHead(200, SSE_HEADERS);
      res.write(chunk(model, { role: "assistant", content: "" }, null));
      const entry = { res, model, sent: 0 };
      slow.add(entry);
      res.on("close", () => slow.delete(entry));
      return;
    }
    if (body.stream && model === "bench-chunked") {
      chunkedStream(res, model);
      return;
    }
    if (body.stream) {
      const payload = fastStream(model);
      res.writeHead(200, SSE_HEADERS);
      res.end(payload);
      return;
    }
    const payload = plainAnswer(model);
    res.writeHead(200, { "content-type": "application/json", "content-length": payload.length });
    res.end(payload);
  });
}

async function listen(port: number, host: string): Promise<number> {
  const server = http.createServer({ keepAliveTimeout: 65_000, headersTimeout: 66_000, requestTimeout: 0 }, handle);
  server.maxHeadersCount = 100;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host, backlog: 4096 }, () => resolve());
  });
  const address = server.address();
  return typeof address === "object" && address ? address.port : port;
}

const port = await listen(Number(process.argv[2] ?? 0), "127.0.0.1");
for (const host of process.argv.slice(3)) await listen(port, host);
process.stdout.write(`listening ${port}\n`);
process.on("SIGTERM", () => process.exit(0));
process.on("disconnect", () => process.exit(0));
