export * from "./chat-types.ts";
export * from "./common.ts";
export * from "./protocols/anthropic-messages.ts";
export { getProvider, PROVIDERS } from "./registry.ts";
export type * from "./spec.ts";
export {
  type BodyReader,
  type DirectBody,
  type EventedBody,
  forEachBatch,
  readFrameBatches,
  readFrames,
  STOP_BATCHES,
  sseData,
  type UpstreamBodySource,
} from "./stream-reader.ts";
