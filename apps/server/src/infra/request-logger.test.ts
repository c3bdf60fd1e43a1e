import Fastify from "fastify";
import { describe, expect, it, vi } from "vitest";
import { createLogger } from "./logger.ts";
import { AccessLog, RequestLogger, requestLoggerFactory } from "./request-logger.ts";

function app(level: string) {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (chunk: string) => void lines.push(chunk) });
  const fastify = Fastify({ loggerInstance: logger, childLoggerFactory: requestLoggerFactory as never });
  // Children made from here on: the requests' (Fastify makes some of its own while it starts).
  const children = () => vi.spyOn(logger, "child");
  const made: RequestLogger[] = [];
  fastify.get("/quiet", async (request) => {
    made.push(request.log as unknown as RequestLogger);
    request.log.info({ detail: 1 }, "below the level");
    return { ok: true };
  });
  fastify.get("/loud", async (request) => {
    request.log.warn({ password: "hunter2", item: 1 }, "something odd");
    request.log.child({ step: "inner" }).error("inner failure");
    return { ok: true };
  });
  return { fastify, made, children, entries: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe("request logger", () => {
  it("makes no pino child for a request that writes nothing at an enabled level", async () => {
    const { fastify, made, children: spy, entries } = app("warn");
    await fastify.ready();
    const children = spy();
    expect((await fastify.inject({ url: "/quiet" })).statusCode).toBe(200);
    expect(made).toHaveLength(1);
    expect(made[0]).toBeInstanceOf(RequestLogger);
    expect(children).not.toHaveBeenCalled();
    expect(entries()).toEqual([]);
    expect(made[0]?.isLevelEnabled("info")).toBe(false);
    expect(made[0]?.level).toBe("warn");
    await fastify.close();
  });

  it("writes enabled lines with the request id, redaction and nested children intact", async () => {
    const { fastify, children: spy, entries } = app("warn");
    await fastify.ready();
    const children = spy();
    const response = await fastify.inject({ url: "/loud" });
    expect(response.statusCode).toBe(200);
    // One child for the request, made at its first line, and the nested one (pino children inherit the spy).
    expect(children).toHaveBeenCalledTimes(2);
    const [warning, inner] = entries();
    expect(warning).toMatchObject({ level: "warn", msg: "something odd", reqId: expect.any(String), password: "[redacted]", item: 1 });
    expect(inner).toMatchObject({ level: "error", msg: "inner failure", step: "inner", reqId: warning?.reqId });
    expect(JSON.stringify(entries())).not.toContain("hunter2");
    await fastify.close();
  });

  it("logs the server's own request lines (errors, completions) at the configured level", async () => {
    const lines: string[] = [];
    const logger = createLogger("info", { write: (chunk: string) => void lines.push(chunk) });
    const fastify = Fastify({ loggerInstance: logger, childLoggerFactory: requestLoggerFactory as never });
    fastify.get("/boom", async () => {
      throw new Error("kaput");
    });
    expect((await fastify.inject({ url: "/boom" })).statusCode).toBe(500);
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed.map((line) => line.msg)).toEqual(["incoming request", "kaput", "request completed"]);
    expect(new Set(parsed.map((line) => line.reqId)).size).toBe(1);
    await fastify.close();
  });

  it("writes one access line per request at info (the request, its answer and time), and the incoming line at debug", async () => {
    for (const level of ["info", "debug"]) {
      const lines: string[] = [];
      const logger = createLogger(level, { write: (chunk: string) => void lines.push(chunk) });
      const fastify = Fastify({
        loggerInstance: logger,
        childLoggerFactory: requestLoggerFactory as never,
        logController: new AccessLog(),
      });
      fastify.post("/things", async (_request, reply) => reply.code(201).send({ ok: true }));
      fastify.get("/boom", async () => {
        throw new Error("kaput");
      });
      await fastify.inject({ method: "POST", url: "/things?x=1", payload: { a: 1 } });
      await fastify.inject({ url: "/boom" });
      const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      const messages = parsed.map((line) => line.msg);
      expect(messages).toEqual(
        level === "info"
          ? ["request completed", "kaput", "request completed"]
          : ["incoming request", "request completed", "incoming request", "kaput", "request completed"],
      );
      const completed = parsed.find((line) => line.msg === "request completed");
      expect(completed).toMatchObject({
        level: "info",
        reqId: expect.any(String),
        req: { method: "POST", url: "/things?x=1" },
        res: { statusCode: 201 },
        responseTime: expect.any(Number),
      });
      await fastify.close();
    }
  });
});
