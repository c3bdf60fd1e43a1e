import { asRecord, joinUrl } from "../../common.ts";
import type { CallContext, UpstreamRequest } from "../../spec.ts";
import { geminiHeaders } from "./convert-request.ts";

export function geminiModelsRequest(context: CallContext): UpstreamRequest {
  return { method: "GET", url: joinUrl(context.baseUrl, "/v1beta/models?pageSize=1000"), headers: geminiHeaders(context) };
}

/** `{models: [{name: "models/gemini-…"}]}` as bare model names. */
export function geminiModelNames(raw: unknown): string[] {
  const models = asRecord(raw).models;
  return (Array.isArray(models) ? models : [])
    .map((model) => asRecord(model).name)
    .filter((name): name is string => typeof name === "string")
    .map((name) => name.replace(/^models\//, ""));
}
