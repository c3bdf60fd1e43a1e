import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Redis } from "ioredis";
import type { Logger } from "pino";

export type BusHandler = (payload: unknown) => void;

/**
 * Cache invalidation and other cross-instance events. A publish reaches this instance's handlers at
 * once, and every other instance through Redis pub/sub when Redis is configured.
 */
export interface EventBus {
  publish(topic: string, payload?: unknown): void;
  subscribe(topic: string, handler: BusHandler): () => void;
  close(): Promise<void>;
}

export function createEventBus(options: { publisher?: Redis; subscriber?: Redis; prefix: string; logger: Logger }): EventBus {
  const local = new EventEmitter();
  local.setMaxListeners(0);
  const origin = randomUUID();
  const channel = `${options.prefix}bus`;
  const { publisher, subscriber } = options;

  if (subscriber) {
    void subscriber.subscribe(channel).catch((error: Error) => options.logger.warn({ err: error }, "bus subscribe failed"));
    subscriber.on("message", (from: string, text: string) => {
      if (from !== channel) return;
      try {
        const message = JSON.parse(text) as { origin: string; topic: string; payload: unknown };
        if (message.origin !== origin) local.emit(message.topic, message.payload);
      } catch (error) {
        options.logger.warn({ err: error }, "malformed bus message");
      }
    });
  }

  return {
    publish(topic, payload = null) {
      local.emit(topic, payload);
      if (publisher) {
        publisher
          .publish(channel, JSON.stringify({ origin, topic, payload }))
          .catch((error: Error) => options.logger.warn({ err: error, topic }, "bus publish failed"));
      }
    },
    subscribe(topic, handler) {
      local.on(topic, handler);
      return () => local.off(topic, handler);
    },
    async close() {
      local.removeAllListeners();
      if (subscriber) await subscriber.unsubscribe(channel).catch(() => undefined);
    },
  };
}
