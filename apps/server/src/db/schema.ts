import type { Generated } from "kysely";

/** Booleans are stored as 0/1 and times as ISO 8601 UTC text on both SQLite and PostgreSQL. */
export type Flag = number;

export interface UsersTable {
  id: string;
  email: string;
  name: string;
  password_hash: string;
  is_platform_admin: Flag;
  status: "active" | "disabled";
  token_version: Generated<number>;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
}

export interface TenantsTable {
  id: string;
  name: string;
  slug: string;
  status: "active" | "suspended";
  limits: string;
  created_at: string;
  updated_at: string;
}

export interface MembershipsTable {
  tenant_id: string;
  user_id: string;
  role: "owner" | "admin" | "member";
  limits: string;
  created_at: string;
}

export interface InvitationsTable {
  id: string;
  tenant_id: string;
  email: string;
  role: "owner" | "admin" | "member";
  token_hash: string;
  invited_by: string | null;
  expires_at: string;
  accepted_at: string | null;
  created_at: string;
}

export interface AuthSessionsTable {
  id: string;
  user_id: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  ip: string | null;
  user_agent: string | null;
}

export interface RefreshTokensTable {
  token_hash: string;
  session_id: string;
  expires_at: string;
  used_at: string | null;
  created_at: string;
}

export interface PlatformSettingsTable {
  key: string;
  value: string;
  updated_at: string;
}

export interface TenantSettingsTable {
  tenant_id: string;
  key: string;
  value: string;
  updated_at: string;
}

export interface AuditLogsTable {
  id: string;
  tenant_id: string | null;
  actor_user_id: string | null;
  actor_email: string | null;
  action: string;
  target_type: string;
  target_id: string | null;
  ip: string | null;
  request_id: string | null;
  before: string | null;
  after: string | null;
  created_at: string;
}

export interface ChannelsTable {
  id: string;
  tenant_id: string;
  name: string;
  provider: string;
  base_url: string;
  credentials_sealed: string;
  credentials_masked: string;
  models: string;
  model_mapping: string;
  priority: number;
  weight: number;
  group_name: string;
  status: "enabled" | "disabled" | "auto_disabled";
  status_reason: string | null;
  timeout_ms: number;
  first_byte_timeout_ms: number;
  extra_headers: string;
  limits: string;
  created_at: string;
  updated_at: string;
}

export interface AccessTokensTable {
  id: string;
  tenant_id: string;
  user_id: string;
  name: string;
  key_hash: string;
  key_prefix: string;
  expires_at: string | null;
  models: string | null;
  channel_groups: string | null;
  ip_allowlist: string;
  status: "enabled" | "disabled";
  allow_dry_run: Flag;
  limits: string;
  rate_limits: string;
  last_used_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface UsageLogsTable {
  id: string;
  tenant_id: string;
  user_id: string | null;
  token_id: string | null;
  channel_id: string | null;
  provider: string | null;
  endpoint: string;
  requested_model: string;
  upstream_model: string | null;
  stream: Flag;
  status_code: number;
  error: string | null;
  latency_ms: number;
  ttft_ms: number | null;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  attempts: number;
  request_id: string | null;
  cost_micro_usd: number;
  created_at: string;
}

export interface QuotaCountersTable {
  key: string;
  tenant_id: string;
  used: number;
  updated_at: string;
}

export interface ModelPricesTable {
  id: string;
  /** null for the platform's prices, which every tenant inherits. */
  tenant_id: string | null;
  model: string;
  input_per_mtok: number;
  output_per_mtok: number;
  cached_input_per_mtok: number | null;
  per_request: number;
  updated_at: string;
}

/** Usage summed per hour or UTC day and per tenant, user, token, model or channel (see modules/usage/rollups.ts). */
export interface UsageRollupsTable {
  tenant_id: string;
  period: "hour" | "day";
  /** ISO 8601 UTC start of the hour or UTC day. */
  bucket_start: string;
  dimension: "tenant" | "user" | "token" | "model" | "channel";
  dimension_value: string;
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  total_tokens: number;
  cost_micro_usd: number;
  latency_ms_sum: number;
}

/** An in-app notification of a tenant; `data` is JSON text. */
export interface NotificationsTable {
  id: string;
  tenant_id: string;
  kind: string;
  title: string;
  message: string;
  data: string;
  /** Unique per tenant: the same event seen twice (or by several instances) is stored once. */
  dedupe_key: string;
  created_at: string;
}

/** Who receives a notification, and when they read it. */
/** A usage batch that landed (kept for a day), so one written again is not counted twice. */
export interface UsageBatchesTable {
  id: string;
  landed_at: string;
}

export interface NotificationRecipientsTable {
  tenant_id: string;
  user_id: string;
  notification_id: string;
  read_at: string | null;
}

export interface Database {
  users: UsersTable;
  tenants: TenantsTable;
  memberships: MembershipsTable;
  invitations: InvitationsTable;
  auth_sessions: AuthSessionsTable;
  refresh_tokens: RefreshTokensTable;
  platform_settings: PlatformSettingsTable;
  tenant_settings: TenantSettingsTable;
  audit_logs: AuditLogsTable;
  channels: ChannelsTable;
  access_tokens: AccessTokensTable;
  usage_logs: UsageLogsTable;
  usage_rollups: UsageRollupsTable;
  usage_batches: UsageBatchesTable;
  quota_counters: QuotaCountersTable;
  model_prices: ModelPricesTable;
  notifications: NotificationsTable;
  notification_recipients: NotificationRecipientsTable;
}
