/**
 * What is stuck, for a store opened with the greptimedb layout: which table a poison key
 * quarantines (from GreptimeDB's table info), which procedure holds it (from GreptimeDB's
 * procedure store, segmented values joined), whether the metasrv is in recovery mode or has
 * procedures paused, and the runbook's verdict (docs/GREPTIMEDB.md). Read-only, plain reads:
 * what it shows may change a moment later, which is why a clear decides again under its lock.
 *
 * Nothing GreptimeDB stored can make these calls fail: what does not parse is shown raw and
 * listed in `problems`. A backend that does not answer still fails the call (never "absent" when
 * the truth is unknown).
 */
import type { PoisonStoreClient } from "../core/contract.js";
import { BackendUnavailableError, InvalidArgumentError, PoisonStoreError } from "../core/errors.js";
import type { PoisonRecord } from "../core/records.js";
import { checkKey } from "../core/validation.js";
import { type GreptimeDriver, greptimeDriverOf } from "./driver.js";
import {
  canonicalProcedureId,
  displayBytes,
  type ProcedureSummary,
  parsePoisonValue,
  parseSwitches,
  parseTableInfo,
  parseTableNameValue,
  procedurePrefix,
  type Switches,
  summarizeProcedure,
  switchKeys,
  tableIdOfPoisonKey,
  tableInfoKey,
  tableNameKey,
} from "./layout.js";

/** The metasrv's state as the layout sees it. */
export interface GreptimeClusterState {
  /** Where the store is (`store.location`). */
  location: string;
  storeKeyPrefix: string;
  /** GreptimeDB's metadata is there (SQL: its table exists; etcd: always true). When false,
   *  every listing is empty: check the URL, `table` and `schema`. */
  metadataFound: boolean;
  /** Whether the store was opened with `allowWrite`. */
  allowWrite: boolean;
  /** Recovery mode, paused procedures, maintenance mode (`__switches/…`). */
  switches: Switches;
}

/** The table a `table/<id>` poison key quarantines. */
export interface GreptimeTableRef {
  tableId: number;
  /** `found`: its table info is there; `missing`: there is none (the table was dropped, or is
   *  being dropped); `malformed`: there is one that does not parse (`raw` holds it). */
  status: "found" | "missing" | "malformed";
  /** `catalog.schema.table`, when found. */
  fullName: string | null;
  catalog: string | null;
  schema: string | null;
  table: string | null;
  /** The table info's version (bumped by each metadata change), when found. */
  version: number | null;
  /** The table info as stored, when malformed. */
  raw: string | null;
}

/**
 * The runbook's reading of a poison key:
 * - `wait`: its procedure is in GreptimeDB's procedure store and will be resumed; it removes
 *   its own key when it ends. Do not clear.
 * - `repair-then-clear`: nothing in GreptimeDB will ever remove the key (the procedure ended
 *   and its state is gone, it committed, or its state cannot be loaded). Repair the table,
 *   verify it, then clear.
 * - `not-greptimedb`: the token is not a GreptimeDB procedure id (the key was put through
 *   poison-store): its record and liveness decide, as on any other store.
 */
export interface ClearAdvice {
  verdict: "wait" | "repair-then-clear" | "not-greptimedb";
  /** One paragraph an operator can act on. */
  reason: string;
}

export interface PoisonExplanation {
  /** The poison key, without the namespace (`table/1024`). */
  key: string;
  /** The key as stored (`<storeKeyPrefix>/__procedure_poison/table/1024`). */
  storageKey: string;
  /** The record, as `inspectPoison` reads it (GreptimeDB's keys: state `poisoned`, times
   *  unknown, unless poison-store keeps a record for the key). */
  record: PoisonRecord;
  /** The poison value as stored; null when the key was cleared since `record` was read. */
  value: {
    /** The bytes as text (or `\x…` hex). */
    raw: string;
    /** The token in it, or null when the value does not parse. */
    token: string | null;
    /** Exactly the bytes GreptimeDB writes for that token: its own `delete_poison` compares
     *  bytes and can only remove a canonical value. */
    canonical: boolean;
  } | null;
  /** The holder as a GreptimeDB procedure id (canonical form), or null when the token is not
   *  one. */
  procedureId: string | null;
  /** The holder's state in GreptimeDB's procedure store, or null when it holds none. */
  procedure: ProcedureSummary | null;
  /** The holder's parent procedure, when it names one and its state is there. */
  parent: ProcedureSummary | null;
  /** The table, for a `table/<id>` key; null for any other key. */
  table: GreptimeTableRef | null;
  cluster: GreptimeClusterState;
  advice: ClearAdvice;
  /** Everything that could not be read or looks wrong, one sentence each. */
  problems: string[];
}

/** Keys one read asks for at most: etcd's default `--max-txn-ops` is 128. */
const READ_BATCH = 100;
/** A procedure's keys read at most (its steps and their segments); more is flagged. */
const MAX_PROCEDURE_KEYS = 1000;
/** Procedure ranges read at once. */
const PARALLEL_READS = 4;

function driverOf(store: PoisonStoreClient): GreptimeDriver {
  const driver = greptimeDriverOf(store);
  if (!driver) {
    throw new InvalidArgumentError(
      "store",
      'was not opened with the greptimedb layout: open it with openPoisonStore(url, { layout: "greptimedb" }) or a URL ending in ?layout=greptimedb',
    );
  }
  return driver;
}

/** A reader failure becomes a typed backend error (its outcome is unknown, never "absent"). */
async function reading<T>(driver: GreptimeDriver, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof PoisonStoreError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new BackendUnavailableError(driver.backend, message, error);
  }
}

async function getMany(driver: GreptimeDriver, keys: readonly string[]) {
  const found = new Map<string, Uint8Array>();
  const unique = [...new Set(keys)];
  for (let i = 0; i < unique.length; i += READ_BATCH) {
    const part = await reading(driver, () =>
      driver.greptime.metadata.get(unique.slice(i, i + READ_BATCH)),
    );
    for (const [key, value] of part) found.set(key, value);
  }
  return found;
}

async function inParallel<T, R>(items: readonly T[], run: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await run(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_READS, items.length) }, worker));
  return out;
}

async function clusterState(
  store: PoisonStoreClient,
  driver: GreptimeDriver,
  metadataFound: boolean,
  found?: Map<string, Uint8Array>,
): Promise<GreptimeClusterState> {
  const { layout } = driver.greptime;
  const keys = switchKeys(layout.storeKeyPrefix);
  const present = found ?? (await getMany(driver, Object.values(keys)));
  return {
    location: store.location,
    storeKeyPrefix: layout.storeKeyPrefix,
    metadataFound,
    allowWrite: layout.allowWrite,
    switches: parseSwitches(layout.storeKeyPrefix, present.keys()),
  };
}

/** The metasrv's switches and whether its metadata is there. */
export async function greptimeClusterState(
  store: PoisonStoreClient,
): Promise<GreptimeClusterState> {
  const driver = driverOf(store);
  return clusterState(store, driver, await store.exists()); // exists() refuses a closed store
}

/** The explanation of one poison key, or null when it is absent. */
export async function explainPoison(
  store: PoisonStoreClient,
  key: string,
): Promise<PoisonExplanation | null> {
  driverOf(store);
  const record = await store.inspectPoison(checkKey(key));
  if (!record) return null;
  const [explanation] = await explainPoisons(store, [record]);
  return explanation ?? null;
}

/**
 * Explanations of the records of a listing page (`listPoisons(...).records`), in their order.
 * Reads the switches once, the poison values and table info in batches, and each holder's
 * procedure state once.
 */
export async function explainPoisons(
  store: PoisonStoreClient,
  records: readonly PoisonRecord[],
): Promise<PoisonExplanation[]> {
  const driver = driverOf(store);
  // Through the store first: a closed store refuses (StoreClosedError) before any read.
  const metadataFound = await store.exists();
  const prefix = driver.greptime.layout.storeKeyPrefix;
  const switches = switchKeys(prefix);
  const storageKeys = records.map((record) => store.namespace + record.key);
  const tableIds = records.map((record) => tableIdOfPoisonKey(record.key));
  const infoKeys = tableIds.flatMap((id) => (id === null ? [] : [tableInfoKey(prefix, id)]));
  const found = await getMany(driver, [...storageKeys, ...infoKeys, ...Object.values(switches)]);
  const cluster = await clusterState(
    store,
    driver,
    metadataFound,
    new Map([...found].filter(([key]) => Object.values(switches).includes(key))),
  );

  // Table info, then the name key it claims (a second read: the name is inside the info).
  const tables = new Map<number, { ref: GreptimeTableRef; problems: string[] }>();
  const nameKeys: string[] = [];
  for (const id of tableIds) {
    if (id === null || tables.has(id)) continue;
    const bytes = found.get(tableInfoKey(prefix, id));
    const ref: GreptimeTableRef = {
      tableId: id,
      status: "missing",
      fullName: null,
      catalog: null,
      schema: null,
      table: null,
      version: null,
      raw: null,
    };
    const problems: string[] = [];
    if (bytes !== undefined) {
      const info = parseTableInfo(bytes);
      if (info.ok) {
        Object.assign(ref, {
          status: "found",
          fullName: info.fullName,
          catalog: info.catalog,
          schema: info.schema,
          table: info.table,
          version: info.version,
        });
        if (info.tableId !== id)
          problems.push(`table info of ${id} names table id ${info.tableId}`);
        nameKeys.push(tableNameKey(prefix, info.catalog, info.schema, info.table));
      } else {
        ref.status = "malformed";
        ref.raw = info.raw;
        problems.push(`table info ${tableInfoKey(prefix, id)} cannot be read: ${info.problem}`);
      }
    }
    tables.set(id, { ref, problems });
  }
  const names = nameKeys.length > 0 ? await getMany(driver, nameKeys) : new Map();
  for (const { ref, problems } of tables.values()) {
    if (ref.status !== "found") continue;
    const nameKey = tableNameKey(prefix, ref.catalog ?? "", ref.schema ?? "", ref.table ?? "");
    const bytes = names.get(nameKey);
    if (bytes === undefined) {
      problems.push(`no table name key ${nameKey}: the table is being dropped or renamed`);
      continue;
    }
    const name = parseTableNameValue(bytes);
    if (!name.ok) problems.push(`table name key ${nameKey} cannot be read: ${name.problem}`);
    else if (name.tableId !== ref.tableId) {
      problems.push(`${ref.fullName} now names table ${name.tableId}, not ${ref.tableId}`);
    }
  }

  // Each holder's procedure state, and its parent's, once per procedure.
  const procedures = new Map<string, ProcedureSummary | null>();
  const summarize = async (ids: readonly string[]) => {
    const wanted = [...new Set(ids)].filter((id) => !procedures.has(id));
    const summaries = await inParallel(wanted, async (id) => {
      const entries = await reading(driver, () =>
        driver.greptime.metadata.range(procedurePrefix(prefix, id), MAX_PROCEDURE_KEYS + 1),
      );
      const summary = summarizeProcedure(prefix, id, entries.slice(0, MAX_PROCEDURE_KEYS));
      if (summary && entries.length > MAX_PROCEDURE_KEYS) {
        summary.problems.push(`more than ${MAX_PROCEDURE_KEYS} stored keys: only the first read`);
      }
      return summary;
    });
    wanted.forEach((id, i) => {
      procedures.set(id, summaries[i] ?? null);
    });
  };
  const holderIds = records.map((record) => canonicalProcedureId(record.token));
  await summarize(holderIds.filter((id): id is string => id !== null));
  const parentIds = [...procedures.values()]
    .map((summary) => summary?.message?.parentId ?? null)
    .filter((id): id is string => id !== null);
  await summarize(parentIds);

  return records.map((record, i) => {
    const problems: string[] = [];
    const storageKey = storageKeys[i] as string;
    const bytes = found.get(storageKey);
    let value: PoisonExplanation["value"] = null;
    if (bytes === undefined) {
      problems.push("the key was cleared since it was read");
    } else {
      const parsed = parsePoisonValue(bytes);
      value = parsed.ok
        ? { raw: displayBytes(bytes), token: parsed.token, canonical: parsed.canonical }
        : { raw: parsed.raw, token: null, canonical: false };
      if (!parsed.ok) problems.push(`poison value cannot be read: ${parsed.problem}`);
      else if (!parsed.canonical) {
        problems.push(
          "poison value is not in the bytes GreptimeDB writes: its own delete_poison compares bytes and will never remove it",
        );
      }
    }
    const id = tableIds[i];
    const table = id === null || id === undefined ? null : (tables.get(id) ?? null);
    if (table) problems.push(...table.problems);
    const procedureId = holderIds[i] ?? null;
    const procedure = procedureId === null ? null : (procedures.get(procedureId) ?? null);
    const parentId = procedure?.message?.parentId ?? null;
    const parent = parentId === null ? null : (procedures.get(parentId) ?? null);
    if (procedure)
      problems.push(...procedure.problems.map((p) => `procedure ${procedureId}: ${p}`));
    return {
      key: record.key,
      storageKey,
      record,
      value,
      procedureId,
      procedure,
      parent,
      table: table?.ref ?? null,
      cluster,
      advice: adviceFor(record, procedureId, procedure, cluster),
      problems,
    };
  });
}

function adviceFor(
  record: PoisonRecord,
  procedureId: string | null,
  procedure: ProcedureSummary | null,
  cluster: GreptimeClusterState,
): ClearAdvice {
  if (procedureId === null) {
    return {
      verdict: "not-greptimedb",
      reason:
        `token ${JSON.stringify(record.token)} is not a GreptimeDB procedure id: the key was put through poison-store` +
        `${record.operation ? ` (operation ${JSON.stringify(record.operation)})` : ""}. ` +
        "Its record and liveness decide, as on any store.",
    };
  }
  const type = procedure?.message?.typeName ?? "procedure";
  const paused = cluster.switches.proceduresPaused
    ? " Procedures are paused on this metasrv: new DDL (the ALTER that verifies the repair) is refused until POST /admin/procedure-manager/resume."
    : "";
  if (procedure === null) {
    return {
      verdict: "repair-then-clear",
      reason:
        `GreptimeDB holds no state for procedure ${procedureId}: it ended (poisoned or failed) and its runner deleted its state, ` +
        "so nothing in GreptimeDB will ever remove this key. Repair the table (ADMIN reconcile_table), verify it " +
        `(DESC TABLE, a read and a write), then clear.${paused}`,
    };
  }
  switch (procedure.status) {
    case "executing":
    case "rolling-back":
      return {
        verdict: "wait",
        reason:
          `${type} ${procedureId} is in GreptimeDB's procedure store, ${procedure.status === "executing" ? "executing" : "rolling back"} ` +
          `at step ${procedure.step}: the metasrv resumes it when it starts or becomes leader, and it removes its own key when it ends. ` +
          `Do not clear; find out why it is stuck (metasrv and datanode logs).${paused}`,
      };
    case "committed":
      return {
        verdict: "repair-then-clear",
        reason:
          `${type} ${procedureId} committed (its state awaits cleanup) and will not remove this key. ` +
          `Verify the table (DESC TABLE, a read and a write), repair it if needed, then clear.${paused}`,
      };
    default:
      return {
        verdict: "repair-then-clear",
        reason:
          `GreptimeDB cannot load the state of ${type} ${procedureId} (see problems) and skips it: nothing will remove this key. ` +
          `Repair the table (ADMIN reconcile_table), verify it, then clear.${paused}`,
      };
  }
}
