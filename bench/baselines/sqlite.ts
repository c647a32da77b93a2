/**
 * SQLite baseline: better-sqlite3 with the driver's durability (WAL, synchronous = FULL), one
 * table of (key, token), statements prepared once, each write in an IMMEDIATE transaction so that
 * other processes on the same file cannot slip in between its statements.
 */
import Database from "better-sqlite3";
import type { Baseline } from "./baseline.js";

export function sqliteBaseline(path: string): Baseline {
  const db = new Database(path, { timeout: 5000 });
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  // TEXT keys compare by their UTF-8 bytes under SQLite's default BINARY collation.
  db.exec(
    "CREATE TABLE IF NOT EXISTS poison (key TEXT PRIMARY KEY, token TEXT NOT NULL) WITHOUT ROWID",
  );
  const insert = db.prepare("INSERT INTO poison (key, token) VALUES (?, ?) ON CONFLICT DO NOTHING");
  const select = db.prepare("SELECT token FROM poison WHERE key = ?").pluck();
  const remove = db.prepare("DELETE FROM poison WHERE key = ? AND token = ?");

  const holderOf = (key: string) => (select.get(key) as string | undefined) ?? null;
  const put = db.transaction((key: string, token: string): string | null => {
    if (insert.run(key, token).changes === 1) return null;
    const holder = holderOf(key);
    return holder === token ? null : holder;
  });
  const del = db.transaction((key: string, token: string): string | null =>
    remove.run(key, token).changes === 1 ? null : holderOf(key),
  );

  return {
    async tryPut(key, token) {
      return put.immediate(key, token);
    },
    async delete(key, token) {
      return del.immediate(key, token);
    },
    async get(key) {
      return holderOf(key);
    },
    async close() {
      db.close();
    },
  };
}
