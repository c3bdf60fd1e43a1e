import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import { deriveKey } from "../../infra/crypto.ts";
import { openCredentials, sealCredentials } from "./credentials.ts";
import { listAllChannels } from "./repository.ts";

export const CREDENTIAL_KEY_PURPOSE = "channel-credentials";

/**
 * Re-seals every channel's credentials under a new master key, in one transaction: either every
 * channel moves to the new key or none does. Answers how many channels were re-sealed.
 */
export async function rotateCredentialKey(db: Kysely<Database>, oldMaster: Buffer, newMaster: Buffer): Promise<number> {
  const oldKey = deriveKey(oldMaster, CREDENTIAL_KEY_PURPOSE);
  const newKey = deriveKey(newMaster, CREDENTIAL_KEY_PURPOSE);
  return db.transaction().execute(async (trx) => {
    const channels = await listAllChannels(trx);
    for (const channel of channels) {
      const credentials = openCredentials(oldKey, channel.id, channel.credentials_sealed);
      await trx
        .updateTable("channels")
        .set({ credentials_sealed: sealCredentials(newKey, channel.id, credentials) })
        .where("id", "=", channel.id)
        .execute();
    }
    return channels.length;
  });
}
