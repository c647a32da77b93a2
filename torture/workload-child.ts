/**
 * One process of the multi-process workload: opens its clients' stores on URL, reports
 * `ready`, waits for `go` on stdin (so every process starts together), runs its share of the
 * workload on the system-wide monotonic clock, and prints its history as one JSON line.
 *
 * Usage: node --import tsx torture/workload-child.ts URL NAMESPACE OPERATIONS CLIENTS SEED FIRST
 */
import { once } from "node:events";
import { openPoisonStore } from "../src/index.js";
import { runWorkload } from "./workload.js";

const [url, namespace, operations, clients, seed, first] = process.argv.slice(2);
if (!url || !namespace || !operations || !clients || !seed || !first) {
  throw new Error("usage: workload-child.ts URL NAMESPACE OPERATIONS CLIENTS SEED FIRST");
}
const stores = Array.from({ length: Number(clients) }, () => openPoisonStore(url, { namespace }));
// Connect (and create tables) before the clock starts.
await Promise.all(stores.map((store) => store.getPoison("warm-up")));
process.stdout.write("ready\n");
process.stdin.setEncoding("utf8");
await once(process.stdin, "data");
// A flowing stdin would keep this process alive after the work is done.
process.stdin.destroy();
const result = await runWorkload({
  stores,
  operations: Number(operations),
  keys: 4,
  tokensPerKey: 3,
  seed: Number(seed),
  firstClient: Number(first),
  clock: () => Number(process.hrtime.bigint()) / 1e6,
});
await Promise.all(stores.map((store) => store.close()));
process.stdout.write(`${JSON.stringify(result)}\n`);
