import type { Redis } from "ioredis";
import type { Logger } from "pino";

/**
 * A Redis client that reports errors to the log instead of crashing the process. The client library is
 * loaded here, on first use: a process without Redis never loads it.
 */
export async function createRedis(url: string, logger: Logger, name: string): Promise<Redis> {
  // The module is the client class (its named exports hang on it), bundled or not.
  const { default: RedisClient } = (await import("ioredis")) as unknown as { default: typeof Redis };
  const client = new RedisClient(url, {
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
