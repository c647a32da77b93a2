/**
 * What the etcd driver tests share, plain (test/drivers/etcd.test.ts) and secured
 * (etcd-tls.test.ts): a store that records its requests, and the native watch check.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import {
  type EtcdDriverOptions,
  type EtcdTransport,
  etcdDriver,
  openPoisonStore,
  type PoisonStoreClient,
} from "../../src/index.js";

/** A store in a fresh namespace whose transport records each request's path (`paths.length`:
 *  the requests sent so far) and the token of each successful login. */
export function countedEtcdStore(options: EtcdDriverOptions): {
  store: PoisonStoreClient;
  paths: string[];
  tokens: string[];
} {
  const paths: string[] = [];
  const tokens: string[] = [];
  const transport: EtcdTransport = async (request, send) => {
    paths.push(request.path);
    const response = await send(request);
    if (request.path === "/v3/auth/authenticate" && response.status === 200) {
      tokens.push(JSON.parse(response.body).token as string);
    }
    return response;
  };
  const store = openPoisonStore(etcdDriver({ ...options, transport }), {
    namespace: `/poison-test/${randomUUID()}/`,
  });
  return { store, paths, tokens };
}

/** store.watch() is served by etcd's own watch (source native), and its abort ends it. */
export async function assertNativeWatchEndsOnAbort(store: PoisonStoreClient): Promise<void> {
  const controller = new AbortController();
  const changes = store.watch({ signal: controller.signal });
  assert.equal(changes.source, "native");
  assert.equal(await changes.ready, true);
  const reading = (async () => {
    for await (const _ of changes) {
      // nothing is written under this namespace
    }
  })();
  controller.abort();
  await reading;
}
