import type { SimProtocol, SimRequest } from "../simulator.ts";
import { openAIProtocol } from "./openai.ts";

const CHAT_OR_EMBEDDINGS = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/;

const deploymentOf = (path: string) => {
  const match = CHAT_OR_EMBEDDINGS.exec(path);
  return match?.[1] ? decodeURIComponent(match[1]) : undefined;
};

const filterResults = { hate: { filtered: false, severity: "safe" }, self_harm: { filtered: false, severity: "safe" } };
const promptFilterResults = [{ prompt_index: 0, content_filter_results: filterResults }];

/**
 * Azure OpenAI: OpenAI's answers addressed by deployment, behind an `api-key` header and an
 * api-version, with content-filter annotations (a stream opens with a chunk of empty `choices`).
 */
export function azureProtocol(options: { models?: string[] } = {}): SimProtocol {
  const models = options.models ?? ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"];
  const openai = openAIProtocol({ models });
  return {
    name: "azure",
    matches: (method, path) =>
      (method === "POST" && CHAT_OR_EMBEDDINGS.test(path)) ||
      (method === "GET" && (path === "/openai/models" || path === "/openai/deployments")),
    model: (path) => deploymentOf(path),
    errorBody: (status, message) => ({ error: { code: String(status), message } }),
    errorFrame: (message) => `data: ${JSON.stringify({ error: { code: "server_error", message, status: 503 } })}\n\n`,
    async handle(request) {
      if (!request.query.get("api-version")) {
        request.json(404, { error: { code: "404", message: "Resource not found" } });
        return;
      }
      if (!request.req.headers["api-key"]) {
        request.json(401, { error: { code: "401", message: "Access denied due to invalid subscription key or wrong API endpoint." } });
        return;
      }
      if (request.path === "/openai/deployments") {
        request.json(200, { object: "list", data: models.map((id) => ({ id, model: id, object: "deployment", status: "succeeded" })) });
        return;
      }
      const deployment = deploymentOf(request.path);
      const body = { ...(request.body as Record<string, unknown>), model: deployment };
      const azure: SimRequest = {
        ...request,
        body,
        json: (status, payload, headers) => request.json(status, status === 200 && deployment ? annotate(payload) : payload, headers),
        stream: (frames, streamOptions) =>
          request.stream(
            [
              `data: ${JSON.stringify({ choices: [], created: 0, id: "", model: "", object: "", prompt_filter_results: promptFilterResults })}\n\n`,
              ...frames,
            ],
            streamOptions,
          ),
      };
      await openai.handle(azure);
    },
  };
}

/** Adds Azure's filter verdicts to a plain chat completion. */
function annotate(payload: unknown): unknown {
  const body = payload as { object?: string; choices?: Record<string, unknown>[] };
  if (body.object !== "chat.completion") return payload;
  return {
    ...body,
    prompt_filter_results: promptFilterResults,
    choices: (body.choices ?? []).map((choice) => ({ ...choice, content_filter_results: filterResults })),
  };
}
