import type { Logger } from "pino";
import type { ChannelService } from "../channels/service.ts";
import type { ChannelStats } from "../gateway/channel-stats.ts";

const REASON_LIMIT = 500;

/** A status change the system made to a channel, announced to listeners (notifications). */
export interface ChannelStatusChange {
  tenantId: string;
  channelId: string;
  status: "auto_disabled" | "enabled";
  reason: string | null;
}

/**
 * Channels whose upstream refuses their credentials (401 or 403, on a request or a probe) are
 * auto-disabled: status "auto_disabled" with the reason, audited as the system, seen by every
 * instance. A passing probe enables them again. Changes run off the request path; the same change to a
 * channel is under way at most once.
 */
export function createAutoDisable(deps: { channels: ChannelService; stats: ChannelStats; logger: Logger }) {
  const { channels, logger } = deps;
  const pending = new Map<string, Promise<boolean>>();
  const listeners = new Set<(change: ChannelStatusChange) => void>();

  function announce(change: ChannelStatusChange) {
    for (const listener of listeners) {
      try {
        listener(change);
      } catch (error) {
        logger.error({ err: error, channel_id: change.channelId }, "channel status listener failed");
      }
    }
  }

  function run(channelId: string, to: string, change: () => Promise<boolean>): Promise<boolean> {
    const key = `${channelId}:${to}`;
    const under = pending.get(key);
    if (under) return under;
    const work = change()
      .catch((error: Error) => {
        logger.error({ err: error, channel_id: channelId }, "channel status change failed");
        return false;
      })
      .finally(() => pending.delete(key));
    pending.set(key, work);
    return work;
  }

  function disable(tenantId: string, channelId: string, status: number, message: string): Promise<boolean> {
    const reason = `the upstream refused the credentials (${status}: ${message})`.slice(0, REASON_LIMIT);
    return run(channelId, "auto_disabled", async () => {
      const changed = await channels.setStatusBySystem(tenantId, channelId, { from: "enabled", to: "auto_disabled", reason });
      if (changed) {
        logger.warn({ tenant_id: tenantId, channel_id: channelId, reason }, "channel auto-disabled");
        announce({ tenantId, channelId, status: "auto_disabled", reason });
      }
      return changed;
    });
  }

  function enable(tenantId: string, channelId: string): Promise<boolean> {
    return run(channelId, "enabled", async () => {
      const changed = await channels.setStatusBySystem(tenantId, channelId, { from: "auto_disabled", to: "enabled", reason: null });
      if (changed) {
        logger.info({ tenant_id: tenantId, channel_id: channelId }, "channel enabled again after a passing probe");
        announce({ tenantId, channelId, status: "enabled", reason: null });
      }
      return changed;
    });
  }

  const unsubscribe = deps.stats.onCredentialsRefused((event) => {
    void disable(event.tenantId, event.channelId, event.status, event.message);
  });

  return {
    disable,
    enable,
    /** Listens for the status changes this instance made (only the instance that changed a channel hears it). */
    onChange(listener: (change: ChannelStatusChange) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** Stops listening and waits for the changes under way. */
    async close() {
      unsubscribe();
      await Promise.all(pending.values());
    },
  };
}

export type AutoDisable = ReturnType<typeof createAutoDisable>;
