import { asNumber, asRecord, asString, errorTypeForStatus, genericError, parseJson } from "../../common.ts";
import type { UpstreamErrorInfo } from "../../spec.ts";

/** Gemini's status names whose OpenAI error type differs from what the HTTP status suggests. */
const TYPE_BY_STATUS: Record<string, string> = {
  UNAUTHENTICATED: "authentication_error",
  PERMISSION_DENIED: "permission_error",
  RESOURCE_EXHAUSTED: "rate_limit_error",
};

/** The `{error: {code, message, status}}` object of a body (or of its first element, for arrays). */
function errorObject(body: unknown): Record<string, unknown> | undefined {
  const record = asRecord(Array.isArray(body) ? body[0] : body);
  return record.error && typeof record.error === "object" ? asRecord(record.error) : undefined;
}

/** Reads a parsed Gemini error; `code` is Google's status name (`RESOURCE_EXHAUSTED`, …). */
export function readGeminiError(httpStatus: number, body: unknown): (UpstreamErrorInfo & { status: number }) | undefined {
  const error = errorObject(body);
  if (!error) return undefined;
  const code = asNumber(error.code);
  const status = code !== undefined && code >= 400 && code < 600 ? code : httpStatus;
  const name = asString(error.status);
  const details = Array.isArray(error.details) ? error.details : [];
  const badKey = details.some((detail) => asRecord(detail).reason === "API_KEY_INVALID");
  return {
    status,
    message: asString(error.message) ?? `Gemini answered ${status}`,
    type: badKey ? "authentication_error" : ((name && TYPE_BY_STATUS[name]) ?? errorTypeForStatus(status)),
    code: name ?? (code !== undefined ? String(code) : null),
  };
}

export function geminiError(status: number, body: string): UpstreamErrorInfo {
  const info = readGeminiError(status, parseJson(body));
  if (!info) return genericError(status, body);
  const { status: _status, ...rest } = info;
  return rest;
}
