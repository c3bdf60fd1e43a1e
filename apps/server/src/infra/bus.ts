import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Redis } from "ioredis";
import type { Logger } from "pino";

export type BusHandler = (payload: unknown) => void;

/**
 * Another way than Redis to reach the other processes: in a cluster without Redis, the primary
 * relays each worker's events to the others.
 */
export interface BusRelay {
  send(topic: string, payload: unknown): void;
  listen(deliver: (topic: string, payload: unknown) => void): () => void;
}

/**
 * Cache invalidation and other cross-instance events. A publish reaches this instance's handlers at
 * once, and every other instance through Redis pub/sub when Redis is configured (or the other
 * processes through the relay, when one is given).
 */
export interface EventBus {
  publish(topic: string, payload?: unknown): void;
  subscribe(topic: string, handler: BusHandler): () => void;
  close(): Promise<void>;
}

export function createEventBus(options: {
  publisher?: Redis | undefined;
  subscriber?: Redis | undefined;
  relay?: BusRelay | undefined;
  prefix: string;
  logger: Logger;
}): EventBus {
  const local = new EventEmitter();
  local.setMaxListeners(0);
  const origin = randomUUID();
  const channel = `${options.prefix}bus`;
  const { publisher, subscriber, relay } = options;
  const stopRelay = relay?.listen((topic, payload) => local.emit(topic, payload));

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
      relay?.send(topic, payload);
    },
    subscribe(topic, handler) {
      local.on(topic, handler);
      return () => local.off(topic, handler);
    },
    async close() {
      local.removeAllListeners();
      stopRelay?.();
      if (subscriber) await subscriber.unsubscribe(channel).catch(() => undefined);
    },
  };
}
