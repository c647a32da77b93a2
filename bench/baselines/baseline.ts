/**
 * What every hand-written baseline offers: the three calls of SPEC §2, written the shortest
 * correct way with the backend's own client, and nothing else (no validation, no records, no
 * namespace, no timeouts). A conflict is returned as data (the holder's token) rather than thrown,
 * as hand-written code would.
 */
export interface Baseline {
  /** Absent: written, resolves null. Held by `token`: null. Held by another: the holder. */
  tryPut(key: string, token: string): Promise<string | null>;
  /** Absent or held by `token`: deleted (or nothing), resolves null. Held by another: the
   *  holder, and the key stays. */
  delete(key: string, token: string): Promise<string | null>;
  /** The holder's token, or null. */
  get(key: string): Promise<string | null>;
  close(): Promise<void>;
}

/** A baseline that cannot be measured, with the reason shown in the report. */
export interface BaselineUnavailable {
  skipped: string;
}

/**
 * A few quick semantic checks, so that a baseline is a fair opponent: an incorrect baseline would
 * make every ratio meaningless. Throws on the first failure. Uses keys under `prefix` and leaves
 * none behind.
 */
export async function checkBaseline(baseline: Baseline, prefix: string): Promise<void> {
  const key = `${prefix}self-check/${process.pid}/${Date.now()}`;
  const expect = (what: string, actual: unknown, expected: unknown) => {
    if (actual !== expected) {
      throw new Error(
        `baseline self-check failed: ${what}: got ${JSON.stringify(actual)}, want ${JSON.stringify(expected)}`,
      );
    }
  };
  expect("get of an absent key", await baseline.get(key), null);
  expect("put-if-absent writes", await baseline.tryPut(key, "token-a"), null);
  expect("get after put", await baseline.get(key), "token-a");
  expect("put by the same token is idempotent", await baseline.tryPut(key, "token-a"), null);
  expect(
    "put by another token returns the holder",
    await baseline.tryPut(key, "token-b"),
    "token-a",
  );
  expect("the conflicting put changed nothing", await baseline.get(key), "token-a");
  expect(
    "delete by a wrong token returns the holder",
    await baseline.delete(key, "token-b"),
    "token-a",
  );
  expect("delete by a wrong token leaves the key", await baseline.get(key), "token-a");
  expect("delete by the holder", await baseline.delete(key, "token-a"), null);
  expect("get after delete", await baseline.get(key), null);
  expect("delete of an absent key is ok", await baseline.delete(key, "token-a"), null);
  // Exactly one of several racing puts on one absent key wins.
  const racers = ["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"];
  const raced = await Promise.all(racers.map((token) => baseline.tryPut(`${key}/race`, token)));
  const winners = raced.filter((holder) => holder === null).length;
  expect("racing puts: winners", winners, 1);
  const holder = await baseline.get(`${key}/race`);
  expect(
    "racing puts: every loser names the winner",
    raced.every((h) => h === null || h === holder),
    true,
  );
  expect("racing puts: cleanup", await baseline.delete(`${key}/race`, holder ?? ""), null);
}
