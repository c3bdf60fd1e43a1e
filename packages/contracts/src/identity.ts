import { z } from "zod";
import { ZDisplayName, ZEmail, ZId, ZPassword, ZTimestamp } from "./common.ts";
import { ZLimit, ZLimitStatus } from "./limits.ts";

export const ZTenantRole = z.enum(["owner", "admin", "member"]);
export type TTenantRole = z.infer<typeof ZTenantRole>;

export const ZUserStatus = z.enum(["active", "disabled"]);

export const ZUser = z.object({
  id: ZId,
  email: z.string(),
  name: z.string(),
  is_platform_admin: z.boolean(),
  status: ZUserStatus,
  created_at: ZTimestamp,
  updated_at: ZTimestamp,
  last_login_at: ZTimestamp.nullable(),
});
export type TUser = z.infer<typeof ZUser>;

export const ZTenantStatus = z.enum(["active", "suspended"]);

export const ZSlug = z
  .string()
  .min(2)
  .max(63)
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, "lowercase letters, digits and inner hyphens");

export const ZTenant = z.object({
  id: ZId,
  name: z.string(),
  slug: z.string(),
  status: ZTenantStatus,
  created_at: ZTimestamp,
  updated_at: ZTimestamp,
});
export type TTenant = z.infer<typeof ZTenant>;

export const ZMembership = z.object({
  tenant: ZTenant,
  role: ZTenantRole,
});

export const ZTokenPair = z.object({
  access_token: z.string(),
  refresh_token: z.string(),
  token_type: z.literal("Bearer"),
  expires_in: z.number().int().describe("access token lifetime in seconds"),
});

export const ZSetupRequest = z.strictObject({
  email: ZEmail,
  password: ZPassword,
  name: ZDisplayName,
  tenant_name: ZDisplayName.optional(),
});

export const ZLoginRequest = z.strictObject({
  email: ZEmail,
  password: z.string().min(1).max(256),
});

export const ZRefreshRequest = z.strictObject({ refresh_token: z.string().min(1).max(512) });

export const ZLogoutRequest = z.strictObject({ refresh_token: z.string().min(1).max(512).optional() });

export const ZAuthResponse = ZTokenPair.extend({ user: ZUser });

export const ZSetupResponse = ZAuthResponse.extend({ tenant: ZTenant });

export const ZMeResponse = z.object({
  user: ZUser,
  memberships: z.array(ZMembership),
  active_tenant_id: ZId.nullable(),
});

export const ZChangePasswordRequest = z.strictObject({
  current_password: z.string().min(1).max(256),
  new_password: ZPassword,
});

export const ZAcceptInviteRequest = z.strictObject({
  token: z.string().min(1).max(512),
  name: ZDisplayName.optional(),
  password: ZPassword.optional(),
});

export const ZCreateTenantRequest = z.strictObject({
  name: ZDisplayName,
  slug: ZSlug.optional(),
  owner_email: ZEmail.optional().describe("an existing user who becomes the tenant's owner"),
});

export const ZUpdateTenantRequest = z.strictObject({
  name: ZDisplayName.optional(),
  status: ZTenantStatus.optional(),
  limits: z.array(ZLimit).max(20).optional().describe("the tenant's quota limits (platform administrators)"),
});

export const ZTenantDetail = ZTenant.extend({ limits: z.array(ZLimitStatus) });

export const ZCreateUserRequest = z.strictObject({
  email: ZEmail,
  name: ZDisplayName,
  password: ZPassword,
  is_platform_admin: z.boolean().default(false),
});

export const ZUpdateUserRequest = z.strictObject({
  name: ZDisplayName.optional(),
  status: ZUserStatus.optional(),
  is_platform_admin: z.boolean().optional(),
});

export const ZResetPasswordRequest = z.strictObject({ password: ZPassword });

export const ZMember = z.object({
  user_id: ZId,
  email: z.string(),
  name: z.string(),
  role: ZTenantRole,
  status: ZUserStatus,
  joined_at: ZTimestamp,
});
export type TMember = z.infer<typeof ZMember>;

export const ZMemberDetail = ZMember.extend({ limits: z.array(ZLimitStatus) });

export const ZAddMemberRequest = z.strictObject({
  email: ZEmail,
  role: ZTenantRole.default("member"),
});

export const ZInvitation = z.object({
  id: ZId,
  email: z.string(),
  role: ZTenantRole,
  expires_at: ZTimestamp,
  created_at: ZTimestamp,
  accepted_at: ZTimestamp.nullable(),
});

export const ZAddMemberResponse = z.object({
  member: ZMember.nullable().describe("set when the user already existed and was added"),
  invitation: ZInvitation.extend({ token: z.string().describe("shown once") })
    .nullable()
    .describe("set when no user had this email: an invitation to accept"),
});

export const ZUpdateMemberRequest = z.strictObject({
  role: ZTenantRole.optional(),
  limits: z.array(ZLimit).max(20).optional().describe("the member's own quota limits in this tenant"),
});
