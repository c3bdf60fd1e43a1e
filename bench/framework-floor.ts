import Fastify from "fastify";
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import { Agent } from "undici";
import { z } from "zod";
import { ZChatBody } from "../apps/server/src/modules/gateway/schemas.ts";

/**
 * The framework floor: what Lyss's server framework costs before any gateway work. One Fastify route
 * with Lyss's own request schema (zod, the same type provider), the body parsed and validated, sent on
 * with JSON.stringify through an undici Agent, the answer passed through as it comes (a stream chunk by
 * chunk). No authentication, quotas, rate limits, routing, decoding or usage records. Against the bare
 * proxy it shows what the framework itself costs; against Lyss, what Lyss's own work costs.
 *
 *   node --import tsx bench/framework-floor.ts <port> <upstream origin>
 *
 * Prints "listening <port>" on stdout when ready.
 */

const port = Number(process.argv[2] ?? 0);
const origin = process.argv[3] ?? "http://127.0.0.1:8000";
const agent = new Agent({ keepAliveTimeout: 30_000, pipelining: 1 });
const app = Fastify({ logger: false }).withTypeProvider<ZodTypeProvider>();
app.setValidatorCompiler(validatorCompiler);
app.setSerializerCompiler(serializerCompiler);

app.post("/v1/chat/completions", { schema: { body: ZChatBody, response: { 200: z.unknown() } } }, async (request, reply) => {
  const upstream = await agent.request({
    origin,
    path: "/v1/chat/completions",
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(request.body),
  });
  if (!request.body.stream) {
    // The upstream's own status passes through (the benchmark's correctness check reads it).
    return reply
      .code(upstream.statusCode as 200)
      .type("application/json")
      .send(await upstream.body.text());
  }
  reply.hijack();
  reply.raw.writeHead(upstream.statusCode, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  for await (const chunk of upstream.body) reply.raw.write(chunk);
  reply.raw.end();
});

const address = await app.listen({ port, host: "127.0.0.1" });
process.stdout.write(`listening ${new URL(address).port}\n`);
process.on("SIGTERM", () => process.exit(0));
