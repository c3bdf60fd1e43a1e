import { errors, jwtVerify, SignJWT } from "jose";

export interface AccessClaims {
  userId: string;
  sessionId: string;
  tokenVersion: number;
}

/** Short-lived HS256 access tokens bound to a session and to the user's token version. */
export function createAccessTokens(key: Uint8Array, ttlSeconds: number, now: () => Date) {
  return {
    ttlSeconds,
    async sign(claims: AccessClaims): Promise<string> {
      const issuedAt = Math.floor(now().getTime() / 1000);
      return new SignJWT({ sid: claims.sessionId, tv: claims.tokenVersion, typ: "access" })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(claims.userId)
        .setIssuer("lyss")
        .setIssuedAt(issuedAt)
        .setExpirationTime(issuedAt + ttlSeconds)
        .sign(key);
    },
    /** Answers the claims, or a reason when the token is not a valid, unexpired access token. */
    async verify(token: string): Promise<AccessClaims | { invalid: string }> {
      try {
        const { payload } = await jwtVerify(token, key, {
          issuer: "lyss",
          algorithms: ["HS256"],
          currentDate: now(),
        });
        if (payload.typ !== "access" || typeof payload.sub !== "string" || typeof payload.sid !== "string") {
          return { invalid: "not an access token" };
        }
        return { userId: payload.sub, sessionId: payload.sid, tokenVersion: Number(payload.tv) };
      } catch (error) {
        if (error instanceof errors.JWTExpired) return { invalid: "access token expired" };
        return { invalid: "invalid access token" };
      }
    },
  };
}

export type AccessTokens = ReturnType<typeof createAccessTokens>;
