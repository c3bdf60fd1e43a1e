import { ZErrorBody } from "@lyss/contracts";
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";

/** The Fastify instance routes are declared on: zod schemas for validation, serialization and OpenAPI. */
export type Api = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 503;

/** Error responses a route documents, all in the one error shape. */
export function errorResponses(...statuses: ErrorStatus[]) {
  return Object.fromEntries(statuses.map((status) => [status, ZErrorBody])) as Record<ErrorStatus, typeof ZErrorBody>;
}

/** The standard error statuses of an authenticated JSON route. */
export const AUTHED_ERRORS = errorResponses(400, 401, 403, 404, 413, 415, 429);

export const ZIdParams = z.strictObject({ id: z.string().min(1).max(64) });

export const clientInfo = (request: FastifyRequest) => ({
  ip: request.ip ?? null,
  userAgent: request.headers["user-agent"] ?? null,
});
