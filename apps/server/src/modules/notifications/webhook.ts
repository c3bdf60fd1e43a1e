import { createHmac, timingSafeEqual } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { TWebhookDelivery, TWebhookEvent } from "@lyss/contracts";
import type { Logger } from "pino";
import type { Clock } from "../../infra/clock.ts";
import { deriveKey } from "../../infra/crypto.ts";
import type { SettingsService } from "../settings/service.ts";

export const TIMESTAMP_HEADER = "x-lyss-timestamp";
export const SIGNATURE_HEADER = "x-lyss-signature";

/** Attempts per event, the waits between them, and the time one attempt may take. */
const MAX_ATTEMPTS = 3;
const RETRY_DELAYS_MS = [500, 2000];
const TIMEOUT_MS = 5000;

/** The tenant's signing secret, derived from the master key: nothing secret is stored. */
export function webhookSecret(masterKey: Buffer, tenantId: string): string {
  return deriveKey(masterKey, `webhook:${tenantId}`).toString("hex");
}

/** `sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`, keyed with the secret as text. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/** What a receiver does: recompute the signature over the raw body and compare in constant time. */
export function verifyWebhook(secret: string, timestamp: string, body: string, signature: string): boolean {
  const expected = Buffer.from(signWebhook(secret, timestamp, body));
  const actual = Buffer.from(signature);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** Statuses worth another attempt: timeouts, rate limits and server errors. */
const retryable = (status: number | null) => status === null || status === 408 || status === 429 || status >= 500;

/** The URL's origin, for logs: a webhook URL's path or query may itself be a secret. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "invalid URL";
  }
}

/**
 * Sends signed events to the tenant's `notification_webhook_url`: a POST of the JSON event with
 * X-Lyss-Timestamp and X-Lyss-Signature, 5 s per attempt, up to 3 attempts with backoff. Deliveries
 * run off the request path; failures are logged, never thrown.
 */
export function createWebhookSender(deps: { settings: SettingsService; masterKey: Buffer; clock: Clock; logger: Logger }) {
  const { settings, clock, logger } = deps;
  const inflight = new Set<Promise<unknown>>();
  const stopping = new AbortController();

  async function urlOf(tenantId: string): Promise<string | null> {
    const value = (await settings.tenant(tenantId)).values.notification_webhook_url;
    return typeof value === "string" && value !== "" ? value : null;
  }

  async function attempt(url: string, secret: string, body: string): Promise<{ status: number | null; error: string | null }> {
    const timestamp = String(Math.floor(clock.ms() / 1000));
    try {
      const response = await fetch(url, {
        method: "POST",
        redirect: "manual",
        headers: {
          "content-type": "application/json",
          "user-agent": "Lyss-Webhook/1",
          [TIMESTAMP_HEADER]: timestamp,
          [SIGNATURE_HEADER]: signWebhook(secret, timestamp, body),
        },
        body,
        signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(TIMEOUT_MS)]),
      });
      await response.arrayBuffer().catch(() => undefined);
      const ok = response.status >= 200 && response.status < 300;
      return { status: response.status, error: ok ? null : `the receiver answered ${response.status}` };
    } catch (error) {
      const cause = (error as Error & { cause?: Error }).cause;
      return { status: null, error: cause?.message ?? (error as Error).message };
    }
  }

  /** Sends the event, retrying up to `maxAttempts`; answers how it went. */
  async function deliver(event: TWebhookEvent, maxAttempts: number): Promise<TWebhookDelivery> {
    const url = await urlOf(event.tenant_id);
    if (!url) return { delivered: false, url: null, attempts: 0, status: null, error: "no notification_webhook_url is set" };
    const secret = webhookSecret(deps.masterKey, event.tenant_id);
    const body = JSON.stringify(event);
    let result: { status: number | null; error: string | null } = { status: null, error: null };
    let attempts = 0;
    while (attempts < maxAttempts && !stopping.signal.aborted) {
      if (attempts > 0) {
        const delay = RETRY_DELAYS_MS[attempts - 1] ?? RETRY_DELAYS_MS.at(-1) ?? 0;
        try {
          await sleep(delay, undefined, { signal: stopping.signal });
        } catch {
          break;
        }
      }
      attempts += 1;
      result = await attempt(url, secret, body);
      if (result.error === null || !retryable(result.status)) break;
    }
    return { delivered: result.error === null && attempts > 0, url, attempts, ...result };
  }

  return {
    url: urlOf,
    secret: (tenantId: string) => webhookSecret(deps.masterKey, tenantId),

    /** Delivers the event in the background (with retries); the outcome goes to the log. */
    enqueue(event: TWebhookEvent): void {
      if (stopping.signal.aborted) return;
      const work = deliver(event, MAX_ATTEMPTS)
        .then((delivery) => {
          if (delivery.delivered || delivery.url === null) return;
          const { attempts, status, error } = delivery;
          const context = { tenant_id: event.tenant_id, event_id: event.id, kind: event.kind, webhook: originOf(delivery.url) };
          logger.warn({ ...context, attempts, status, error }, "webhook delivery failed");
        })
        .catch((error: Error) => logger.error({ err: error, tenant_id: event.tenant_id, event_id: event.id }, "webhook delivery failed"))
        .finally(() => inflight.delete(work));
      inflight.add(work);
    },

    /** Sends one event now, once, and answers the outcome (the admin's test button). */
    send(event: TWebhookEvent): Promise<TWebhookDelivery> {
      return deliver(event, 1);
    },

    /** Waits for the deliveries under way (all of them, in tests). */
    async idle(): Promise<void> {
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
    },

    /** Ends the deliveries under way: requests are aborted and no retry follows. */
    async close(): Promise<void> {
      stopping.abort();
      await Promise.allSettled([...inflight]);
    },
  };
}

export type WebhookSender = ReturnType<typeof createWebhookSender>;
