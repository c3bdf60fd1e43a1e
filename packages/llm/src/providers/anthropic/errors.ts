import { asRecord, asString, errorTypeForStatus, genericError, parseJson } from "../../common.ts";
import type { UpstreamErrorInfo } from "../../spec.ts";
import type { AnthropicErrorType } from "./api-types.ts";

/** The HTTP status Anthropic documents for each error type. */
export const ANTHROPIC_ERROR_STATUS: Record<AnthropicErrorType, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
};

const isErrorType = (type: string): type is AnthropicErrorType => Object.hasOwn(ANTHROPIC_ERROR_STATUS, type);

/**
 * The status to report for an Anthropic error type. Overloaded (529, a status no client or retry
 * policy knows) is read as 503, so the core treats it as the transient outage it is.
 */
export function statusForErrorType(type: string): number {
  const status = isErrorType(type) ? ANTHROPIC_ERROR_STATUS[type] : 500;
  return status === 529 ? 503 : status;
}

/** Anthropic's error type for an HTTP status. */
export function errorTypeOfStatus(status: number): AnthropicErrorType {
  if (status === 529 || status === 503) return "overloaded_error";
  if (status === 502 || status === 504) return "api_error";
  const exact = (Object.keys(ANTHROPIC_ERROR_STATUS) as AnthropicErrorType[]).find((type) => ANTHROPIC_ERROR_STATUS[type] === status);
  if (exact) return exact;
  return status >= 500 ? "api_error" : "invalid_request_error";
}

/** Reads `{type: "error", error: {type, message}}`; other bodies are read the generic way. */
export function readAnthropicError(status: number, body: string): UpstreamErrorInfo {
  const error = asRecord(asRecord(parseJson(body)).error);
  const type = asString(error.type);
  const message = asString(error.message);
  if (type === undefined || message === undefined) return genericError(status, body);
  return { message, type: errorTypeForStatus(status === 529 ? 503 : status), code: type };
}
