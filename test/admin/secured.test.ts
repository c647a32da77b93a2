/**
 * The admin service over the secured servers: the store's location it shows, and the error it
 * answers for a misconfigured store, never carry the password.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { openPoisonStore } from "../../src/index.js";
import { backendSkipReason } from "../conformance/index.js";
import { secretForms } from "../support/secured.js";
import {
  securedEtcdUrl,
  securedMysqlUrl,
  securedPassword,
  securedPostgresUrl,
  securedRedisUrl,
  securedUnavailable,
  withCredentials,
} from "../support/servers.js";
import { call, codeOf, OPERATOR_SECRET, startAdmin } from "./support.js";

const WRONG = 'wr0ng"p@ss\\w/rd';
const SECURED = [
  { name: "etcd-tls", url: securedEtcdUrl, user: "poison" },
  { name: "redis-tls", url: securedRedisUrl, user: "poison" },
  { name: "postgres-tls", url: securedPostgresUrl, user: "poison_tls" },
  { name: "mysql-tls", url: securedMysqlUrl, user: "poison" },
];

const assertClean = (text: string, where: string) => {
  for (const secret of [securedPassword, WRONG]) {
    for (const form of secretForms(secret)) {
      assert.ok(!text.includes(form), `${where} shows ${JSON.stringify(form)}:\n${text}`);
    }
  }
};

for (const server of SECURED) {
  const skip = await backendSkipReason(server.name, () => securedUnavailable(server.url));
  describe(`admin service on ${server.name}`, { skip: skip ?? false }, () => {
    it("shows the store's location without the password, and answers", async (t) => {
      const store = openPoisonStore(server.url, { timeoutMs: 4000 });
      const admin = await startAdmin(store);
      t.after(async () => {
        await admin.close();
        await store.close();
      });
      const whoami = await call(`${admin.url}/api/v1/whoami`, { token: OPERATOR_SECRET });
      assert.equal(whoami.status, 200, whoami.text);
      assert.match(whoami.text, /:\*\*\*@/);
      assertClean(whoami.text, "whoami");
      const list = await call(`${admin.url}/api/v1/poisons`, { token: OPERATOR_SECRET });
      assert.equal(list.status, 200, list.text);
    });

    it("a wrong password: 503 BACKEND_CONFIGURATION naming the fix, no password anywhere", async (t) => {
      const store = openPoisonStore(withCredentials(server.url, server.user, WRONG), {
        timeoutMs: 4000,
      });
      const admin = await startAdmin(store);
      t.after(async () => {
        await admin.close();
        await store.close();
      });
      const list = await call(`${admin.url}/api/v1/poisons`, { token: OPERATOR_SECRET });
      assert.equal(list.status, 503, list.text);
      assert.equal(codeOf(list), "BACKEND_CONFIGURATION");
      assert.match(list.text, /password/);
      assertClean(list.text, "the error answer");
      const whoami = await call(`${admin.url}/api/v1/whoami`, { token: OPERATOR_SECRET });
      assertClean(whoami.text, "whoami");
    });
  });
}
