import type { Migration } from "kysely";
import { foundation } from "./0001-foundation.ts";
import { gateway } from "./0002-gateway.ts";
import { governance } from "./0003-governance.ts";
import { usageRollups } from "./0004-usage-rollups.ts";
import { notifications } from "./0005-notifications.ts";
import { usageBatches } from "./0006-usage-batches.ts";

/** Every migration, in order. Names are permanent once released. */
export const MIGRATIONS: Record<string, Migration> = {
  "0001_foundation": foundation,
  "0002_gateway": gateway,
  "0003_governance": governance,
  "0004_usage_rollups": usageRollups,
  "0005_notifications": notifications,
  "0006_usage_batches": usageBatches,
};
