import { ZSettingsResponse } from "@lyss/contracts";
import { actorOf, requireTenant } from "../auth/guard.ts";
import { type Api, AUTHED_ERRORS } from "../http.ts";
import { ZPlatformSettingsPatch, ZTenantSettingsPatch } from "./registry.ts";
import type { SettingsService } from "./service.ts";

const tags = ["settings"];

export function settingsRoutes(app: Api, settings: SettingsService) {
  app.get(
    "/api/v1/settings/platform",
    {
      config: { access: "platform_admin" },
      schema: { tags, summary: "Platform-wide runtime settings", response: { 200: ZSettingsResponse, ...AUTHED_ERRORS } },
    },
    async () => settings.platform(),
  );

  app.patch(
    "/api/v1/settings/platform",
    {
      config: { access: "platform_admin" },
      schema: {
        tags,
        summary: "Change platform settings (null resets a key to its default)",
        body: ZPlatformSettingsPatch,
        response: { 200: ZSettingsResponse, ...AUTHED_ERRORS },
      },
    },
    async (request) => settings.updatePlatform(actorOf(request), request.body),
  );

  app.get(
    "/api/v1/settings/tenant",
    {
      config: { access: { tenant: "member" } },
      schema: { tags, summary: "The active tenant's settings", response: { 200: ZSettingsResponse, ...AUTHED_ERRORS } },
    },
    async (request) => settings.tenant(requireTenant(request).tenant.id),
  );

  app.patch(
    "/api/v1/settings/tenant",
    {
      config: { access: { tenant: "admin" } },
      schema: {
        tags,
        summary: "Change the active tenant's settings (null resets a key)",
        body: ZTenantSettingsPatch,
        response: { 200: ZSettingsResponse, ...AUTHED_ERRORS },
      },
    },
    async (request) => settings.updateTenant(actorOf(request), requireTenant(request).tenant.id, request.body),
  );
}
