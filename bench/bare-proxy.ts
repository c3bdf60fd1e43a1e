import http from "node:http";
import { pipeline } from "node:stream/promises";
import { Pool } from "undici";

/**
 * The limit a gateway is measured against: a bare pass-through proxy, node:http in front of an undici
 * keep-alive Pool to one upstream. No authentication, no parsing, no accounting.
 *
 *   node --import tsx bench/bare-proxy.ts <port> <upstream origin>
 *
 * Prints "listening <port>" on stdout when ready.
 */

const port = Number(process.argv[2] ?? 0);
const origin = process.argv[3] ?? "http://127.0.0.1:8000";
const pool = new Pool(origin, { connections: 512, keepAliveTimeout: 30_000, pipelining: 1 });

const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "host", "upgrade", "proxy-connection", "te", "trailer"]);

function forwardHeaders(raw: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (!HOP.has(name)) headers[name] = raw[i + 1] as string;
  }
  return headers;
}

const server = http.createServer({ keepAliveTimeout: 65_000, headersTimeout: 66_000, requestTimeout: 0 }, async (req, res) => {
  try {
    const upstream = await pool.request({
      method: req.method as "POST",
      path: req.url ?? "/",
      headers: forwardHeaders(req.rawHeaders),
      body: req.method === "GET" || req.method === "HEAD" ? null : req,
    });
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(upstream.headers)) {
      if (value !== undefined && !HOP.has(name)) headers[name] = value;
    }
    res.writeHead(upstream.statusCode, headers);
    await pipeline(upstream.body, res);
  } catch (error) {
    if (!res.headersSent) {
      res.writeHead(502, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: String(error), type: "bad_gateway" } }));
    } else {
      res.destroy();
    }
  }
});

server.listen({ port, host: "127.0.0.1", backlog: 4096 }, () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === "object" && address ? address.port : port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
