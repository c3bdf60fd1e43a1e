import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Config } from "./config/env.ts";
import type { EventBus } from "./infra/bus.ts";
import type { Clock } from "./infra/clock.ts";
import type { Db } from "./infra/db.ts";
import type { Metrics } from "./infra/metrics.ts";

/** The infrastructure every module is built from; made once per app in app.ts. */
export interface Infra {
  config: Config;
  logger: Logger;
  db: Db;
  redis: Redis | undefined;
  bus: EventBus;
  metrics: Metrics;
  clock: Clock;
  masterKey: Buffer;
  /** Ends the event bus and the Redis connections. */
  closeRedis(): Promise<void>;
}
