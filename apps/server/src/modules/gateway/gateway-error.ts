/** An error of the data plane, answered in the client's protocol (OpenAI or Anthropic shape). */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
    readonly type?: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "GatewayError";
  }
}
