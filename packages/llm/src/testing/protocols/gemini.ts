import { pieces, replyFor, type SimProtocol } from "../simulator.ts";
import { embed } from "./openai.ts";

interface Part {
  text?: string;
  functionCall?: unknown;
  functionResponse?: unknown;
}
interface Content {
  role?: string;
  parts?: Part[];
}
interface GenerateBody {
  contents?: Content[];
  systemInstruction?: Content;
  tools?: { functionDeclarations?: { name: string }[] }[];
  toolConfig?: { functionCallingConfig?: { mode?: string; allowedFunctionNames?: string[] } };
}

const ROUTE = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent|batchEmbedContents)$/;

const STATUS_NAMES: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  429: "RESOURCE_EXHAUSTED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

const errorBody = (status: number, message: string) => ({ error: { code: status, message, status: STATUS_NAMES[status] ?? "UNKNOWN" } });

const textOf = (content: Content | undefined) =>
  (content?.parts ?? [])
    .map((part) => part.text ?? "")
    .filter(Boolean)
    .join("\n");

/** The conversation as the OpenAI protocol reads it, so both answer alike. */
function conversation(body: GenerateBody) {
  const contents = body.contents ?? [];
  const lastUser = [...contents]
    .reverse()
    .find((content) => content.role === "user" && content.parts?.some((part) => part.text !== undefined));
  const texts = [...(body.systemInstruction ? [textOf(body.systemInstruction)] : []), ...contents.map(textOf)];
  return { lastUserText: textOf(lastUser), allText: texts.join(" ") };
}

/** Google's Gemini API (v1beta): generateContent, streamGenerateContent (SSE), batchEmbedContents, models. */
export function geminiProtocol(options: { models?: string[] } = {}): SimProtocol {
  const models = options.models ?? ["gemini-2.0-flash", "gemini-2.5-pro", "text-embedding-004"];
  return {
    name: "gemini",
    matches: (method, path) => (method === "POST" && ROUTE.test(path)) || (method === "GET" && path === "/v1beta/models"),
    model: (path) => ROUTE.exec(path)?.[1],
    errorBody,
    errorFrame: (message) => `data: ${JSON.stringify(errorBody(503, message))}\n\n`,
    async handle(request) {
      if (!request.req.headers["x-goog-api-key"]) {
        request.json(
          403,
          errorBody(403, "Method doesn't allow unregistered callers. Please use API Key or other form of API consumer identity."),
        );
        return;
      }
      if (request.path === "/v1beta/models") {
        request.json(200, { models: models.map((name) => ({ name: `models/${name}`, supportedGenerationMethods: ["generateContent"] })) });
        return;
      }
      const [, model = "", method] = ROUTE.exec(request.path) ?? [];
      if (method === "batchEmbedContents") {
        const requests = (request.body as { requests?: { content?: Content }[] }).requests ?? [];
        request.json(200, { embeddings: requests.map((item) => ({ values: embed(textOf(item.content)) })) });
        return;
      }
      const body = request.body as GenerateBody;
      const calling = body.toolConfig?.functionCallingConfig;
      const reply = replyFor({
        ...conversation(body),
        toolNames: (body.tools ?? []).flatMap((tool) => (tool.functionDeclarations ?? []).map((declaration) => declaration.name)),
        forceTool: calling?.mode === "ANY" ? calling.allowedFunctionNames?.[0] : undefined,
      });
      const usageMetadata = {
        promptTokenCount: reply.promptTokens,
        candidatesTokenCount: reply.completionTokens,
        totalTokenCount: reply.promptTokens + reply.completionTokens,
      };
      const answer = (parts: unknown[], finishReason?: string, usage: object = { promptTokenCount: reply.promptTokens }) => ({
        candidates: [{ content: { parts, role: "model" }, ...(finishReason ? { finishReason } : {}), index: 0 }],
        usageMetadata: usage,
        modelVersion: model,
        responseId: "sim-gemini",
      });
      const call = reply.toolCall ? { functionCall: { name: reply.toolCall.name, args: JSON.parse(reply.toolCall.arguments) } } : undefined;
      if (method === "generateContent") {
        request.json(200, answer(call ? [call] : [{ text: reply.text }], "STOP", usageMetadata));
        return;
      }
      const sse = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`;
      const texts = call ? [] : pieces(reply.text, 5);
      const frames = texts.slice(0, -1).map((text) => sse(answer([{ text }])));
      frames.push(sse(answer(call ? [call] : [{ text: texts.at(-1) ?? "" }], "STOP", usageMetadata)));
      await request.stream(frames, { malformed: 'data: {"candidates": [\n\n', contentType: "text/event-stream" });
    },
  };
}
