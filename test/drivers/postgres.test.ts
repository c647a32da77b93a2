import pg from "pg";
import { openPoisonStore, type PgPoolLike, postgresDriver } from "../../src/index.js";
import { backendSkipReason, testDriver } from "../conformance/index.js";
import { networkedChecks } from "../support/networked-checks.js";
import { postgresUnavailable, postgresUrl } from "../support/servers.js";

const url = postgresUrl;
const target = new URL(url);
const unavailable = postgresUnavailable;

await testDriver({
  name: "postgres",
  durable: true,
  unavailable,
  open: (options) => openPoisonStore(url, options),
});

const viaPort = (port: number) => {
  const proxied = new URL(url);
  proxied.hostname = "127.0.0.1";
  proxied.port = String(port);
  return proxied.toString();
};

networkedChecks({
  name: "postgres",
  skip: await backendSkipReason("postgres", unavailable),
  target: { host: target.hostname, port: Number(target.port || 5432) },
  openCounting(port, counter) {
    const pool = new pg.Pool({ connectionString: viaPort(port), max: 2 });
    pool.on("error", () => undefined);
    const counting: PgPoolLike = {
      async connect() {
        const client = await pool.connect();
        return {
          query(text: string, values?: unknown[]) {
            counter.statements++;
            return client.query(text, values);
          },
          release: (error?: Error | boolean) => client.release(error),
          on: (event: "error", listener: (error: Error) => void) => client.on(event, listener),
          off: (event: "error", listener: (error: Error) => void) => client.off(event, listener),
        };
      },
      end: () => pool.end(),
    };
    const store = openPoisonStore(postgresDriver({ pool: counting }));
    const close = store.close.bind(store);
    return Object.assign(store, {
      close: async () => {
        await close();
        await pool.end();
      },
    });
  },
  openWithTables: (tables) => openPoisonStore(postgresDriver({ url, ...tables })),
  async dropTables({ table, auditTable }) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`DROP TABLE IF EXISTS "${table}", "${auditTable}"`);
    } finally {
      await client.end();
    }
  },
  openThrough(port, { timeoutMs, clientTimeoutMs }) {
    return openPoisonStore(
      postgresDriver({
        url: viaPort(port),
        connectTimeoutMs: clientTimeoutMs,
        queryTimeoutMs: clientTimeoutMs,
      }),
      { timeoutMs },
    );
  },
});
