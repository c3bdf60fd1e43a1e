import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import { newId } from "../../infra/ids.ts";
import { findChannel } from "../channels/repository.ts";
import type { AutoDisable, ChannelStatusChange } from "../health/auto-disable.ts";
import type { QuotaService, ThresholdEvent } from "../quota/service.ts";
import { findToken } from "../tokens/repository.ts";
import { findUserById } from "../users/repository.ts";
import type { NotificationService } from "./service.ts";

const WINDOW_TEXT: Record<ThresholdEvent["window"], string> = { total: "in total", day: "today", month: "this month" };

function amount(metric: ThresholdEvent["metric"], value: number): string {
  if (metric === "cost_micro_usd") return `$${(value / 1_000_000).toFixed(2)}`;
  return `${value.toLocaleString("en-US")} ${metric}`;
}

/** What the limit belongs to, in words, and who besides the tenant's owners and admins hears of it. */
async function subjectOf(db: Kysely<Database>, event: ThresholdEvent): Promise<{ label: string; userId: string | null }> {
  switch (event.scope) {
    case "token": {
      const token = await findToken(db, event.tenantId, event.scopeId);
      return { label: `The access token "${token?.name ?? event.scopeId}"`, userId: token?.user_id ?? null };
    }
    case "member": {
      const userId = event.scopeId.slice(event.tenantId.length + 1);
      const user = await findUserById(db, userId);
      return { label: `The member ${user?.email ?? userId}`, userId };
    }
    case "channel": {
      const channel = await findChannel(db, event.tenantId, event.scopeId);
      return { label: `The channel "${channel?.name ?? event.scopeId}"`, userId: null };
    }
    default:
      return { label: "The tenant", userId: null };
  }
}

/** One `quota.threshold` notification per limit, threshold and window (the event key names the window). */
async function quotaAlert(db: Kysely<Database>, notifications: NotificationService, event: ThresholdEvent) {
  const { label, userId } = await subjectOf(db, event);
  const percent = Math.round(event.threshold * 100);
  const used = `${amount(event.metric, event.used)} of ${amount(event.metric, event.max)}`;
  const limit = `${event.scope} ${event.metric} limit (${event.window})`;
  await notifications.notify(event.tenantId, {
    kind: "quota.threshold",
    title: event.threshold >= 1 ? `Quota used up: ${limit}` : `${percent} % of a quota used: ${limit}`,
    message: `${label} has used ${used} ${WINDOW_TEXT[event.window]}${event.threshold >= 1 ? "; further requests are refused" : ""}.`,
    data: {
      scope: event.scope,
      scope_id: event.scopeId,
      metric: event.metric,
      window: event.window,
      max: event.max,
      used: event.used,
      threshold: event.threshold,
    },
    userIds: userId ? [userId, ...(await notifications.admins(event.tenantId))] : null,
    dedupeKey: `${event.key}:${event.threshold}`,
  });
}

/** `channel.auto_disabled` / `channel.enabled` for the tenant's owners and admins. */
async function channelAlert(db: Kysely<Database>, notifications: NotificationService, change: ChannelStatusChange) {
  const name = (await findChannel(db, change.tenantId, change.channelId))?.name ?? change.channelId;
  const disabled = change.status === "auto_disabled";
  await notifications.notify(change.tenantId, {
    kind: disabled ? "channel.auto_disabled" : "channel.enabled",
    title: disabled ? `Channel "${name}" was disabled` : `Channel "${name}" is enabled again`,
    message: disabled
      ? `The channel "${name}" was disabled automatically: ${change.reason ?? "its credentials were refused"}. It is enabled again when a health probe passes.`
      : `The channel "${name}" passed a health probe and serves requests again.`,
    data: { channel_id: change.channelId, name, reason: change.reason },
    userIds: null,
    // Only the instance whose conditional status update succeeded hears of a change, so each change is new.
    dedupeKey: `channel:${change.channelId}:${change.status}:${newId()}`,
  });
}

/**
 * Turns quota thresholds (80 % and 100 %) and channel auto-disable / re-enable into notifications, off
 * the request path. Answers a function that stops listening.
 */
export function subscribeAlerts(deps: {
  db: Kysely<Database>;
  notifications: NotificationService;
  quota: Pick<QuotaService, "onThreshold">;
  autoDisable: Pick<AutoDisable, "onChange">;
}) {
  const { db, notifications } = deps;
  const stopQuota = deps.quota.onThreshold((event) => notifications.track(quotaAlert(db, notifications, event)));
  const stopChannels = deps.autoDisable.onChange((change) => notifications.track(channelAlert(db, notifications, change)));
  return () => {
    stopQuota();
    stopChannels();
  };
}
