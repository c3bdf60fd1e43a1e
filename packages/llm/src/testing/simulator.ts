import http from "node:http";
import type { AddressInfo } from "node:net";

/** A fault to inject into matching requests. */
export interface Fault {
  /** Answer with this HTTP status and the protocol's error body. */
  status?: number;
  message?: string;
  headers?: Record<string, string>;
  /** Answer 200 with this text as the JSON body, in place of the protocol's answer (a malformed one, say). */
  body?: string;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Wait this long between streamed frames. */
  frameDelayMs?: number;
  /** Never answer (until the client gives up). */
  hang?: boolean;
  /** In a stream: answer 200 and then an error frame before any content. */
  errorFrameFirst?: boolean;
  /** In a stream: cut the connection after this many frames. */
  dropAfterFrames?: number;
  /** In a stream: send a malformed frame after this many frames, then end. */
  malformedAfterFrames?: number;
  /** In a stream: keep the response open after the last frame, until the client goes away. */
  holdOpen?: boolean;
  /** In a stream: write every frame in one piece, as a fast upstream sends a short answer. */
  onePiece?: boolean;
  /** Apply to this many matching requests, then stop (default: all). */
  times?: number;
}

export interface FaultRule {
  path?: string | RegExp;
  model?: string;
  fault: Fault;
  remaining: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  /** The body's text as it came. */
  text: string;
  /** The client closed the connection before the answer was complete. */
  aborted: boolean;
  completed: boolean;
}

/** What the simulator answers: a text reply, or a call of the first offered tool. */
export interface Reply {
  text: string;
  toolCall?: { id: string; name: string; arguments: string };
  promptTokens: number;
  completionTokens: number;
}

export interface SimRequest {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  path: string;
  query: URLSearchParams;
  body: unknown;
  record: RecordedRequest;
  fault: Fault | undefined;
  /** Writes frames one by one, applying the stream faults (drop, malformed, delay). */
  stream(frames: string[], options: { malformed: string; contentType: string }): Promise<void>;
  json(status: number, body: unknown, headers?: Record<string, string>): void;
}

/** One wire protocol the simulator speaks. */
export interface SimProtocol {
  name: string;
  /** Answers whether this protocol serves the request. */
  matches(method: string, path: string): boolean;
  /** The model a request names (for fault matching), if any. */
  model(path: string, body: unknown): string | undefined;
  errorBody(status: number, message: string): unknown;
  /** An in-stream error frame, for `errorFrameFirst`. */
  errorFrame(message: string): string;
  handle(request: SimRequest): Promise<void>;
}

const words = (text: string) => text.split(/\s+/).filter(Boolean).length;

/** The simulator's answer to a conversation: deterministic, so tests can assert it. */
export function replyFor(input: { lastUserText: string; allText: string; toolNames: string[]; forceTool?: string | undefined }): Reply {
  const promptTokens = Math.max(1, words(input.allText));
  const toolName =
    input.forceTool ?? (input.toolNames.length && /weather|tool|call/i.test(input.lastUserText) ? input.toolNames[0] : undefined);
  if (toolName) {
    return {
      text: "",
      toolCall: { id: "call_sim_1", name: toolName, arguments: JSON.stringify({ city: "Paris", unit: "celsius" }) },
      promptTokens,
      completionTokens: 12,
    };
  }
  const text = `Hello from the simulator. You said: ${input.lastUserText.slice(0, 200)}`;
  return { text, promptTokens, completionTokens: words(text) };
}

/** Splits text into pieces of about `size` characters, keeping words whole where it can. */
export function pieces(text: string, count = 5): string[] {
  if (!text) return [];
  const size = Math.max(1, Math.ceil(text.length / count));
  const out: string[] = [];
  for (let index = 0; index < text.length; index += size) out.push(text.slice(index, index + size));
  return out;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A local HTTP server that speaks each provider's wire format, records every request, and injects
 * faults: error statuses, delays, hangs, error frames before content, mid-stream drops and malformed
 * frames.
 */
export class UpstreamSimulator {
  readonly requests: RecordedRequest[] = [];
  private readonly rules: FaultRule[] = [];
  private server: http.Server | undefined;
  private readonly sockets = new Set<import("node:net").Socket>();
  url = "";

  constructor(private readonly protocols: SimProtocol[]) {}

  async start(port = 0): Promise<this> {
    this.server = http.createServer((req, res) => void this.dispatch(req, res));
    this.server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server?.listen(port, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Injects a fault into requests matching the path (substring or pattern) and model. */
  fail(match: { path?: string | RegExp; model?: string }, fault: Fault): void {
    this.rules.push({ ...match, fault, remaining: fault.times ?? Number.POSITIVE_INFINITY });
  }

  reset(): void {
    this.rules.length = 0;
    this.requests.length = 0;
  }

  requestsTo(path: string | RegExp): RecordedRequest[] {
    return this.requests.filter((request) => (typeof path === "string" ? request.path.includes(path) : path.test(request.path)));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private takeFault(path: string, model: string | undefined): Fault | undefined {
    for (const rule of this.rules) {
      if (rule.remaining <= 0) continue;
      if (rule.model !== undefined && rule.model !== model) continue;
      if (rule.path !== undefined && !(typeof rule.path === "string" ? path.includes(rule.path) : rule.path.test(path))) continue;
      rule.remaining -= 1;
      return rule.fault;
    }
    return undefined;
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse) {
    const parsedUrl = new URL(req.url ?? "/", "http://simulator");
    const path = parsedUrl.pathname;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const record: RecordedRequest = {
      method: req.method ?? "GET",
      path,
      query: parsedUrl.searchParams,
      headers: req.headers,
      body,
      text,
      aborted: false,
      completed: false,
    };
    this.requests.push(record);
    res.on("close", () => {
      if (!res.writableFinished) record.aborted = true;
    });
    res.on("finish", () => {
      record.completed = true;
    });

    const protocol = this.protocols.find((candidate) => candidate.matches(record.method, path));
    if (!protocol) {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: `no route ${path}` } }));
      return;
    }
    const fault = this.takeFault(path, protocol.model(path, body));
    if (fault?.delayMs) await sleep(fault.delayMs);
    if (fault?.hang) return;
    if (fault?.status) {
      res
        .writeHead(fault.status, { "content-type": "application/json", ...fault.headers })
        .end(JSON.stringify(protocol.errorBody(fault.status, fault.message ?? `simulated ${fault.status}`)));
      return;
    }
    if (fault?.body !== undefined) {
      res.writeHead(200, { "content-type": "application/json", ...fault.headers }).end(fault.body);
      return;
    }
    const request: SimRequest = {
      req,
      res,
      path,
      query: parsedUrl.searchParams,
      body,
      record,
      fault,
      json(status, payload, headers) {
        res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(payload));
      },
      async stream(frames, options) {
        res.writeHead(200, { "content-type": options.contentType, "cache-control": "no-cache", ...fault?.headers });
        const all = fault?.errorFrameFirst ? [protocol.errorFrame(fault.message ?? "simulated overload")] : frames;
        if (fault?.onePiece) {
          // One write (the end, in the same turn, goes out with it).
          res.write(all.join(""));
          if (!fault.holdOpen) res.end();
          return;
        }
        for (let index = 0; index < all.length; index++) {
          if (res.destroyed) return;
          if (fault?.dropAfterFrames !== undefined && index >= fault.dropAfterFrames) {
            res.destroy();
            return;
          }
          if (fault?.malformedAfterFrames !== undefined && index >= fault.malformedAfterFrames) {
            res.end(options.malformed);
            return;
          }
          // Each frame reaches the socket before the next one (or a drop) follows.
          await new Promise<void>((resolve) => res.write(all[index] as string, () => resolve()));
          if (fault?.frameDelayMs) await sleep(fault.frameDelayMs);
        }
        if (!fault?.holdOpen) res.end();
      },
    };
    try {
      await protocol.handle(request);
    } catch (error) {
      if (!res.headersSent) request.json(500, protocol.errorBody(500, (error as Error).message));
      else res.destroy();
    }
  }
}
