export * from "./common.ts";
export * from "./gateway.ts";
export * from "./identity.ts";
export * from "./limits.ts";
export * from "./notifications.ts";
export * from "./platform.ts";
export * from "./usage.ts";
