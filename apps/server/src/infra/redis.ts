import { Redis } from "ioredis";
import type { Logger } from "pino";

/** A Redis client that reports errors to the log instead of crashing the process. */
export function createRedis(url: string, logger: Logger, name: string): Redis {
  const client = new Redis(url, {
    connectionName: `lyss-${name}`,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    lazyConnect: false,
  });
  let lastError = "";
  client.on("error", (error: Error) => {
    if (error.message !== lastError) logger.warn({ err: error, client: name }, "redis error");
    lastError = error.message;
  });
  client.on("ready", () => {
    lastError = "";
  });
  return client;
}
