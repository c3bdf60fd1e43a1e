import type { FastifyInstance } from "fastify";

declare module "fastify" {
  interface FastifyRequest {
    /** A data-plane request's JSON body as it came, beside the parsed `body`. */
    rawJson: Buffer | undefined;
  }
}

/**
 * The data plane's JSON parser: Fastify's own (the same limits and the same refusal of `__proto__`
 * and `constructor` keys), which also keeps the body's bytes, so that a chat request an adapter would
 * send as it is goes on as those bytes instead of being serialised again. The bytes are Fastify's copy
 * of the body, never a view of the socket's buffer.
 */
export function keepRawJson(scope: FastifyInstance) {
  const parse = scope.getDefaultJsonParser("error", "error");
  scope.decorateRequest("rawJson", undefined);
  scope.removeContentTypeParser("application/json");
  scope.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
    request.rawJson = body as Buffer;
    parse(request, (body as Buffer).toString("utf8"), done);
  });
}
