import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from "fastify-type-provider-zod";
import { AppError, type ErrorCode } from "./app-error.ts";

interface ErrorBody {
  error: { code: string; message: string; details?: unknown; request_id?: string };
}

/** Fastify's own error codes mapped onto ours, so clients see one vocabulary. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: "invalid_json",
  FST_ERR_CTP_EMPTY_JSON_BODY: "invalid_json",
  FST_ERR_CTP_BODY_TOO_LARGE: "payload_too_large",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "unsupported_media_type",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "bad_request",
  FST_ERR_CTP_INVALID_TYPE: "unsupported_media_type",
  FST_ERR_VALIDATION: "validation_failed",
};

function toBody(request: FastifyRequest, code: string, message: string, details?: unknown): ErrorBody {
  const body: ErrorBody = { error: { code, message, request_id: request.id } };
  if (details !== undefined) body.error.details = details;
  return body;
}

function send(reply: FastifyReply, status: number, body: ErrorBody, headers?: Record<string, string>) {
  if (headers) reply.headers(headers);
  return reply.code(status).type("application/json; charset=utf-8").send(body);
}

/** The one place where thrown errors become HTTP answers. 5xx answers never carry internals. */
export function registerErrorHandler(app: FastifyInstance) {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof AppError) {
      if (error.status >= 500) request.log.error({ err: error }, error.message);
      return send(reply, error.status, toBody(request, error.code, error.message, error.details), error.headers);
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const fields = error.validation.map((issue) => ({
        field: [error.validationContext, ...issue.instancePath.split("/").filter(Boolean)].join("."),
        message: issue.message ?? "invalid",
      }));
      const names = [...new Set(fields.map((item) => item.field))].join(", ");
      return send(reply, 400, toBody(request, "validation_failed", `invalid input: ${names}`, { fields }));
    }
    if (isResponseSerializationError(error)) {
      request.log.error({ err: error, issues: error.cause?.issues }, "response did not match its schema");
      return send(reply, 500, toBody(request, "internal_error", "internal error"));
    }
    const mapped = error.code ? FASTIFY_CODES[error.code] : undefined;
    if (mapped) return send(reply, error.statusCode ?? 400, toBody(request, mapped, error.message));
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return send(reply, status, toBody(request, status === 429 ? "rate_limited" : "bad_request", error.message));
    }
    request.log.error({ err: error }, "unhandled error");
    return send(reply, 500, toBody(request, "internal_error", "internal error"));
  });

  app.setNotFoundHandler((request, reply) =>
    send(reply, 404, toBody(request, "not_found", `route ${request.method} ${request.url.split("?")[0]} not found`)),
  );
}
