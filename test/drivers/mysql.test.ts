import mysql from "mysql2/promise";
import { type MysqlPoolLike, mysqlDriver, openPoisonStore } from "../../src/index.js";
import { backendSkipReason, testDriver } from "../conformance/index.js";
import { networkedChecks } from "../support/networked-checks.js";

/** The local test server (MariaDB here; MySQL 8 works the same); POISON_MYSQL_URL overrides it. */
const url = process.env.POISON_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";
const target = new URL(url);

async function unavailable(): Promise<string | null> {
  let connection: mysql.Connection | undefined;
  try {
    connection = await mysql.createConnection({ uri: url, connectTimeout: 2000 });
    await connection.query("SELECT 1");
    return null;
  } catch (error) {
    return `cannot reach MySQL/MariaDB at ${target.host}: ${(error as Error).message}`;
  } finally {
    await connection?.end().catch(() => undefined);
  }
}

await testDriver({
  name: "mysql",
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
  name: "mysql",
  skip: await backendSkipReason("mysql", unavailable),
  target: { host: target.hostname, port: Number(target.port || 3306) },
  openCounting(port, counter) {
    const pool = mysql.createPool({ uri: viaPort(port), connectionLimit: 2 });
    const counting: MysqlPoolLike = {
      async getConnection() {
        const connection = await pool.getConnection();
        return {
          query(sql: string, values?: unknown[]) {
            counter.statements++;
            return connection.query(sql, values) as Promise<[unknown, unknown]>;
          },
          release: () => connection.release(),
          destroy: () => connection.destroy(),
        };
      },
      end: () => pool.end(),
    };
    const store = openPoisonStore(mysqlDriver({ pool: counting }));
    const close = store.close.bind(store);
    return Object.assign(store, {
      close: async () => {
        await close();
        await pool.end();
      },
    });
  },
  openThrough(port, { timeoutMs, clientTimeoutMs }) {
    return openPoisonStore(
      mysqlDriver({
        url: viaPort(port),
        connectTimeoutMs: clientTimeoutMs,
        queryTimeoutMs: clientTimeoutMs,
      }),
      { timeoutMs },
    );
  },
});
