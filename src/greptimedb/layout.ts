/**
 * GreptimeDB's metadata layout, as its metasrv writes it (docs/GREPTIMEDB.md cites the source of
 * every byte): poison keys, the procedure store, table info and names, and the runtime switches.
 * Pure functions, no I/O: drivers read the bytes, this module says what they mean.
 *
 * Every key GreptimeDB writes goes through its `ChrootKvBackend`, which prepends the metasrv's
 * `store_key_prefix` byte for byte (no separator): with prefix `P` the poison key of `table/1024`
 * is `P/__procedure_poison/table/1024` and its table info `P__table_info/1024`.
 *
 * Nothing GreptimeDB stored can make a parser here throw: what does not parse comes back as
 * `{ ok: false, raw, problem }` so a listing can show it and go on.
 */
import { compareKeys } from "../core/keys.js";

/** `state_store.rs` PROCEDURE_POISON_KEY_PREFIX. */
export const POISON_KEY_PREFIX = "/__procedure_poison/";
/** `state_store.rs` PROCEDURE_PREFIX + `store.rs` PROC_PATH (metasrv's `parent_path` is empty). */
export const PROCEDURE_ROOT = "/__procedure__/procedure/";
/** `key.rs` TABLE_INFO_KEY_PREFIX and TABLE_NAME_KEY_PREFIX, with their `/`. */
export const TABLE_INFO_PREFIX = "__table_info/";
export const TABLE_NAME_PREFIX = "__table_name/";
/** Where poison-store keeps its records and audit entries, below the store key prefix: a range no
 *  GreptimeDB code reads (see docs/GREPTIMEDB.md, "Our keys"). */
export const OWN_META_PREFIX = "/__poison_store/";
/** `key.rs`: the runtime switches. A switch is on while its key exists; the value is empty. */
export const SWITCH_KEYS = {
  recovery: "__switches/recovery",
  pauseProcedure: "__switches/pause_procedure",
  maintenance: "__switches/maintenance",
  legacyMaintenance: "__maintenance",
} as const;
/** metasrv's default `procedure.max_metadata_value_size` ("1500KiB"). */
export const DEFAULT_MAX_METADATA_VALUE_SIZE = 1500 * 1024;
/** `kv_backend.rs` DEFAULT_META_TABLE_NAME: metasrv's `meta_table_name` default. */
export const DEFAULT_META_TABLE_NAME = "greptime_metakv";

/** What a parser returns for bytes it cannot read: shown as they are, with the reason. */
export interface Malformed {
  ok: false;
  /** The bytes as text (UTF-8), or `\x…` hex when they are not valid UTF-8. */
  raw: string;
  problem: string;
}

export type Parsed<T> = ({ ok: true } & T) | Malformed;

/** Bytes as GreptimeDB stores them; a string stands for its UTF-8 bytes. */
export type Bytes = Uint8Array | string;

/** One key-value pair read from the metadata store (key as text: GreptimeDB's keys are UTF-8). */
export interface StoredEntry {
  key: string;
  value: Bytes;
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

function toBytes(value: Bytes): Uint8Array {
  return typeof value === "string" ? encoder.encode(value) : value;
}

/** Strict UTF-8 decoding; null when the bytes are not valid UTF-8. */
function utf8(value: Bytes): string | null {
  if (typeof value === "string") return value;
  try {
    return decoder.decode(value);
  } catch {
    return null;
  }
}

/** Bytes for display: their text when valid UTF-8, else `\x` and lowercase hex (PostgreSQL's
 *  bytea output form). */
export function displayBytes(value: Bytes): string {
  const text = utf8(value);
  if (text !== null) return text;
  return `\\x${Buffer.from(toBytes(value)).toString("hex")}`;
}

function malformed(value: Bytes, problem: string): Malformed {
  return { ok: false, raw: displayBytes(value), problem };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseJsonObject(
  value: Bytes,
  what: string,
): { ok: true; object: Record<string, unknown>; text: string } | Malformed {
  const text = utf8(value);
  if (text === null) return malformed(value, `${what} is not valid UTF-8`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return malformed(value, `${what} is not JSON (${(error as Error).message})`);
  }
  if (!isRecord(parsed)) return malformed(value, `${what} is not a JSON object`);
  return { ok: true, object: parsed, text };
}

// ---------------------------------------------------------------------------------------------
// Poison keys (state_store.rs: with_poison_prefix, PoisonValue, KvStateStore::*_poison_inner)

/** The range holding every poison key of a metasrv: `<prefix>/__procedure_poison/`. */
export function poisonNamespace(storeKeyPrefix = ""): string {
  return storeKeyPrefix + POISON_KEY_PREFIX;
}

/** The stored key of a poison key such as `table/1024`. */
export function poisonStorageKey(storeKeyPrefix: string, poisonKey: string): string {
  return poisonNamespace(storeKeyPrefix) + poisonKey;
}

/** The poison key (`table/1024`) of a stored key, or why it is not one. */
export function parsePoisonStorageKey(
  storeKeyPrefix: string,
  storageKey: string,
): Parsed<{ key: string }> {
  const namespace = poisonNamespace(storeKeyPrefix);
  if (!storageKey.startsWith(namespace)) {
    return malformed(storageKey, `does not start with ${JSON.stringify(namespace)}`);
  }
  const key = storageKey.slice(namespace.length);
  if (key.length === 0) return malformed(storageKey, "names no poison key after the namespace");
  return { ok: true, key };
}

/** The exact bytes GreptimeDB stores for a token: serde_json's compact `{"token":"…"}`.
 *  JSON.stringify escapes a string exactly as serde_json does (`"`, `\`, control characters as
 *  `\b \t \n \f \r` or lowercase `\u00xx`, nothing else; a Rust string has no lone surrogate). */
export function encodePoisonValue(token: string): Uint8Array {
  return encoder.encode(JSON.stringify({ token }));
}

/**
 * A poison value. `canonical` says whether the bytes are exactly what GreptimeDB writes for that
 * token: its `delete_poison` compares bytes, so a non-canonical value is never removed by the
 * procedure itself (it fails with ProcedurePoisonConflict) and only a forced clear removes it.
 */
export function parsePoisonValue(value: Bytes): Parsed<{ token: string; canonical: boolean }> {
  const json = parseJsonObject(value, "poison value");
  if (!json.ok) return json;
  const token = json.object.token;
  if (typeof token !== "string") {
    return malformed(value, 'poison value has no string "token" field');
  }
  const canonical = Buffer.from(toBytes(value)).equals(Buffer.from(encodePoisonValue(token)));
  return { ok: true, token, canonical };
}

/** The table id of GreptimeDB's table poison key (`poison_key.rs`: `table/<table_id>`, a u32). */
export function tableIdOfPoisonKey(poisonKey: string): number | null {
  const match = /^table\/(\d+)$/.exec(poisonKey);
  if (!match) return null;
  const id = Number(match[1]);
  return Number.isSafeInteger(id) && id <= 0xffff_ffff ? id : null;
}

// ---------------------------------------------------------------------------------------------
// Procedure ids (procedure.rs ProcedureId: a UUID, shown hyphenated and lowercase)

const UUID_HEX = /^[0-9a-f]{32}$/;

/** A procedure id in its canonical form (as keys and tokens spell it), or null. Accepts the
 *  forms GreptimeDB's `Uuid::parse_str` accepts: hyphenated, simple, `{braced}`, `urn:uuid:`. */
export function canonicalProcedureId(text: string): string | null {
  let body = text.toLowerCase();
  if (body.startsWith("urn:uuid:")) body = body.slice("urn:uuid:".length);
  else if (body.startsWith("{") && body.endsWith("}")) body = body.slice(1, -1);
  let hex: string;
  if (body.length === 36) {
    if (body[8] !== "-" || body[13] !== "-" || body[18] !== "-" || body[23] !== "-") return null;
    hex = body.replaceAll("-", "");
  } else {
    hex = body;
  }
  if (!UUID_HEX.test(hex)) return null;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---------------------------------------------------------------------------------------------
// Procedure store keys (store.rs ParsedKey, state_store.rs KeySet::with_segment_suffix)

export type ProcedureKeyType = "step" | "commit" | "rollback";

/** The range holding every procedure's state: `<prefix>/__procedure__/procedure/`. */
export function procedureRoot(storeKeyPrefix = ""): string {
  return storeKeyPrefix + PROCEDURE_ROOT;
}

/** The range holding one procedure's steps: `<root><id>/`. */
export function procedurePrefix(storeKeyPrefix: string, procedureId: string): string {
  return `${procedureRoot(storeKeyPrefix)}${procedureId}/`;
}

/** `<root><id>/<step, 10 digits>.<step|commit|rollback>`. */
export function procedureKey(
  storeKeyPrefix: string,
  procedureId: string,
  step: number,
  type: ProcedureKeyType,
): string {
  return `${procedurePrefix(storeKeyPrefix, procedureId)}${String(step).padStart(10, "0")}.${type}`;
}

/** Segment `index` (1-based) of a value split under `key`: `<key>/<index, 10 digits>`. */
export function segmentKey(key: string, index: number): string {
  return `${key}/${String(index).padStart(10, "0")}`;
}

export interface ProcedureKeyParts {
  procedureId: string;
  step: number;
  type: ProcedureKeyType;
  /** 0 for the key holding the first part of the value, n for its n-th extra segment. */
  segment: number;
}

const STEP_NAME = /^(\d+)\.(step|commit|rollback)$/;

/** The parts of a procedure store key, or why it is not one GreptimeDB's loader would accept. */
export function parseProcedureKey(
  storeKeyPrefix: string,
  storageKey: string,
): Parsed<ProcedureKeyParts> {
  const root = procedureRoot(storeKeyPrefix);
  if (!storageKey.startsWith(root)) {
    return malformed(storageKey, `does not start with ${JSON.stringify(root)}`);
  }
  const parts = storageKey.slice(root.length).split("/");
  let segment = 0;
  if (parts.length === 3) {
    const suffix = parts[2] as string;
    if (!/^\d+$/.test(suffix)) return malformed(storageKey, "segment suffix is not a number");
    segment = Number(suffix);
    if (!Number.isSafeInteger(segment) || segment < 1) {
      return malformed(storageKey, "segment number out of range");
    }
  } else if (parts.length !== 2) {
    return malformed(storageKey, "is not <procedure id>/<step>.<step|commit|rollback>");
  }
  const id = canonicalProcedureId(parts[0] as string);
  if (id === null) return malformed(storageKey, "procedure id is not a UUID");
  const name = STEP_NAME.exec(parts[1] as string);
  if (!name) return malformed(storageKey, "name is not <step>.<step|commit|rollback>");
  const step = Number(name[1]);
  // GreptimeDB parses the step as a u32.
  if (!Number.isSafeInteger(step) || step > 0xffff_ffff) {
    return malformed(storageKey, "step out of range");
  }
  return { ok: true, procedureId: id, step, type: name[2] as ProcedureKeyType, segment };
}

// ---------------------------------------------------------------------------------------------
// Segmented values (state_store.rs split_value / put; util.rs multiple_value_stream)

/**
 * The key-value pairs GreptimeDB writes for one value: the whole value under `key` when it fits
 * in `maxValueSize` bytes (or there is no limit), else `maxValueSize`-byte chunks, the first under
 * `key` and chunk n under `key/<n, 10 digits>`. Chunks split bytes, not characters.
 */
export function splitValue(
  key: string,
  value: Bytes,
  maxValueSize?: number,
): { key: string; value: Uint8Array }[] {
  const bytes = toBytes(value);
  if (maxValueSize === undefined || bytes.length <= maxValueSize) return [{ key, value: bytes }];
  if (!Number.isSafeInteger(maxValueSize) || maxValueSize < 1) {
    throw new RangeError("maxValueSize must be a positive integer");
  }
  const out: { key: string; value: Uint8Array }[] = [];
  for (let offset = 0, index = 0; offset < bytes.length; offset += maxValueSize, index++) {
    out.push({
      key: index === 0 ? key : segmentKey(key, index),
      value: bytes.subarray(offset, offset + maxValueSize),
    });
  }
  return out;
}

/** A value put back together from its segments. */
export interface JoinedValue {
  key: string;
  value: Uint8Array;
  /** How many extra segments it had (0: stored whole). */
  segments: number;
}

/** A group of segments that cannot be joined (GreptimeDB's loader fails the same way). */
export interface BrokenValue extends Malformed {
  /** `gap`: a first part with segments missing (GreptimeDB's loader fails on it); `orphan`: a
   *  segment without its first part (GreptimeDB ignores it as an unknown key). */
  kind: "gap" | "orphan";
  key: string;
  /** Every stored key of the group, in key order. */
  keys: string[];
}

/**
 * Joins the segments among `entries` (any order) the way GreptimeDB's `multiple_value_stream`
 * does: in key byte order, a key `K/<digits>` right after `K` is a segment of `K`; segments
 * 1..n must all be there. A group with a gap, or a segment without its first part, is returned
 * in `broken` instead of being guessed at.
 */
export function joinSegments(entries: readonly StoredEntry[]): {
  values: JoinedValue[];
  broken: BrokenValue[];
} {
  const sorted = [...entries].sort((a, b) => compareKeys(a.key, b.key));
  const values: JoinedValue[] = [];
  const broken: BrokenValue[] = [];
  let i = 0;
  while (i < sorted.length) {
    const head = sorted[i] as StoredEntry;
    const segments: { index: number; entry: StoredEntry }[] = [];
    let j = i + 1;
    for (; j < sorted.length; j++) {
      const next = sorted[j] as StoredEntry;
      if (!next.key.startsWith(`${head.key}/`)) break;
      const suffix = next.key.slice(head.key.length + 1);
      if (!/^\d+$/.test(suffix)) break;
      segments.push({ index: Number(suffix), entry: next });
    }
    i = j;
    const lone = /^(.*)\/(\d+)$/.exec(head.key);
    if (segments.length === 0 && lone && STEP_NAME.test(lone[1]?.split("/").pop() ?? "")) {
      broken.push({
        ok: false,
        kind: "orphan",
        key: head.key,
        keys: [head.key],
        raw: displayBytes(head.value),
        problem: `segment ${Number(lone[2])} of ${lone[1]} without its first part`,
      });
      continue;
    }
    segments.sort((a, b) => a.index - b.index);
    const gap = segments.findIndex((s, n) => s.index !== n + 1);
    if (gap !== -1) {
      const indexes = segments.map((s) => s.index).join(", ");
      broken.push({
        ok: false,
        kind: "gap",
        key: head.key,
        keys: [head.key, ...segments.map((s) => s.entry.key)],
        raw: displayBytes(head.value),
        problem: `segments are not 1..n (found ${indexes}): the value was written only in part`,
      });
      continue;
    }
    const parts = [toBytes(head.value), ...segments.map((s) => toBytes(s.entry.value))];
    values.push({ key: head.key, value: Buffer.concat(parts), segments: segments.length });
  }
  return { values, broken };
}

// ---------------------------------------------------------------------------------------------
// Procedure messages (store.rs ProcedureMessage) and a procedure's summary

export interface ProcedureMessage {
  typeName: string;
  /** The procedure's own serialized state: a string, JSON for every metasrv procedure. */
  data: string;
  parentId: string | null;
  step: number;
  error: string | null;
  /** `context.actor`, when the submission named one. */
  actor: string | null;
  /** `context` as stored (absent when empty). */
  context: Record<string, unknown> | null;
}

/** A `.step` or `.rollback` value: serde_json of ProcedureMessage. */
export function parseProcedureMessage(value: Bytes): Parsed<{ message: ProcedureMessage }> {
  const json = parseJsonObject(value, "procedure message");
  if (!json.ok) return json;
  const o = json.object;
  if (typeof o.type_name !== "string") return malformed(value, 'no string "type_name"');
  if (typeof o.data !== "string") return malformed(value, 'no string "data"');
  if (!Number.isSafeInteger(o.step) || (o.step as number) < 0 || (o.step as number) > 0xffff_ffff) {
    return malformed(value, 'no u32 "step"');
  }
  const parentText = o.parent_id ?? null;
  const parent = typeof parentText === "string" ? canonicalProcedureId(parentText) : null;
  if (parentText !== null && parent === null) {
    return malformed(value, '"parent_id" is neither null nor a procedure id');
  }
  const error = o.error ?? null;
  if (error !== null && typeof error !== "string") {
    return malformed(value, '"error" is neither absent nor a string');
  }
  const context = o.context ?? null;
  if (context !== null && !isRecord(context)) {
    return malformed(value, '"context" is not an object');
  }
  const actor = context !== null && typeof context.actor === "string" ? context.actor : null;
  return {
    ok: true,
    message: {
      typeName: o.type_name,
      data: o.data,
      parentId: parent,
      step: o.step as number,
      error,
      actor,
      context,
    },
  };
}

/**
 * Where the procedure is, from its newest stored key (GreptimeDB's `load_messages` keeps the
 * highest step of each procedure):
 * - `executing`: newest is a `.step`; a metasrv that starts (or becomes leader) resumes it, and it
 *   will delete its own poison keys when it finishes;
 * - `rolling-back`: newest is a `.rollback`; it will be resumed as rolling back;
 * - `committed`: newest is a `.commit`; it finished, its state awaits cleanup;
 * - `unreadable`: keys are there but none parses (GreptimeDB's loader skips such a procedure, so
 *   nothing will resume it).
 */
export type ProcedureStatus = "executing" | "rolling-back" | "committed" | "unreadable";

export interface ProcedureSummary {
  procedureId: string;
  status: ProcedureStatus;
  /** The newest key's step. */
  step: number;
  /** The message of the newest `.step` or `.rollback` (a `.commit` carries none: then the
   *  newest `.step` before it). Null when none could be read. */
  message: ProcedureMessage | null;
  /** `message.data` parsed, when it is JSON; else null (and `dataText` holds it as stored). */
  data: unknown;
  /** `data` pretty-printed (two spaces), or the raw string when it is not JSON. */
  dataText: string | null;
  /** Every stored key of the procedure, in key order. */
  keys: string[];
  /** What could not be read, one sentence each; the listing shows them and goes on. */
  problems: string[];
}

/**
 * Summarizes one procedure from the entries read under `procedurePrefix(prefix, id)` (pass them
 * all: segments, commits, rollbacks). Null when there is nothing readable of it: the procedure
 * finished and its state was deleted (GreptimeDB deletes a root procedure's keys when its runner
 * exits, whether it succeeded, failed or was poisoned), or it never persisted a step.
 */
export function summarizeProcedure(
  storeKeyPrefix: string,
  procedureId: string,
  entries: readonly StoredEntry[],
): ProcedureSummary | null {
  const id = canonicalProcedureId(procedureId) ?? procedureId;
  const problems: string[] = [];
  const keys = entries.map((e) => e.key).sort(compareKeys);
  const { values, broken } = joinSegments(entries);
  for (const b of broken) problems.push(`${b.key}: ${b.problem}`);

  // A value whose segments cannot be joined stays in the running with no value: GreptimeDB's
  // loader fails on it, so it must not be mistaken for an older, readable step.
  const candidates: { key: string; value: Uint8Array | null }[] = [
    ...values.map((v) => ({ key: v.key, value: v.value as Uint8Array | null })),
    ...broken.filter((b) => b.kind === "gap").map((b) => ({ key: b.key, value: null })),
  ];
  const steps: { parts: ProcedureKeyParts; value: Uint8Array | null; key: string }[] = [];
  for (const c of candidates) {
    const parts = parseProcedureKey(storeKeyPrefix, c.key);
    if (!parts.ok) {
      problems.push(`${c.key}: ${parts.problem}`);
      continue;
    }
    if (parts.procedureId !== id) {
      problems.push(`${c.key}: belongs to procedure ${parts.procedureId}`);
      continue;
    }
    steps.push({ parts: { ...parts, segment: 0 }, value: c.value, key: c.key });
  }
  if (steps.length === 0) {
    if (entries.length === 0) return null;
    return {
      procedureId: id,
      status: "unreadable",
      step: 0,
      message: null,
      data: null,
      dataText: null,
      keys,
      problems: [...problems, "no readable step: GreptimeDB will not resume this procedure"],
    };
  }
  // Newest first (GreptimeDB keeps the highest step); at one step a .commit or .rollback
  // outranks the .step it follows.
  const rank = { step: 0, rollback: 1, commit: 2 } as const;
  steps.sort((a, b) => b.parts.step - a.parts.step || rank[b.parts.type] - rank[a.parts.type]);
  const newest = steps[0] as (typeof steps)[number];
  let status: ProcedureStatus =
    newest.parts.type === "commit"
      ? "committed"
      : newest.parts.type === "rollback"
        ? "rolling-back"
        : "executing";
  if (newest.value === null) {
    status = "unreadable";
    problems.push(`${newest.key}: newest step cannot be joined; GreptimeDB's recovery fails on it`);
  }

  // The message shown: the newest readable .step or .rollback. When the newest key itself does not
  // parse, GreptimeDB skips the procedure (it is never resumed); an older message is still shown.
  let message: ProcedureMessage | null = null;
  for (const s of steps) {
    if (s.parts.type === "commit" || s.value === null) continue;
    const parsed = parseProcedureMessage(s.value);
    if (!parsed.ok) {
      problems.push(`${s.key}: ${parsed.problem}`);
      if (s === newest) status = "unreadable";
      continue;
    }
    message = parsed.message;
    if (s !== newest && newest.parts.type !== "commit") {
      problems.push(`shown: the message of ${s.key}, older than the newest step`);
    }
    if (message.step !== s.parts.step) {
      problems.push(`${s.key}: message says step ${message.step}`);
    }
    break;
  }

  let data: unknown = null;
  let dataText: string | null = null;
  if (message !== null) {
    try {
      data = JSON.parse(message.data);
      dataText = JSON.stringify(data, null, 2);
    } catch {
      dataText = message.data;
      problems.push("data is not JSON: shown as stored");
    }
  }
  return {
    procedureId: id,
    status,
    step: newest.parts.step,
    message,
    data,
    dataText,
    keys,
    problems,
  };
}

// ---------------------------------------------------------------------------------------------
// Table info and table names (key/table_info.rs, key/table_name.rs)

/** `<prefix>__table_info/<table id>`. */
export function tableInfoKey(storeKeyPrefix: string, tableId: number): string {
  return `${storeKeyPrefix}${TABLE_INFO_PREFIX}${tableId}`;
}

export interface TableIdentity {
  tableId: number;
  catalog: string;
  schema: string;
  table: string;
  /** `catalog.schema.table`, as GreptimeDB's `format_full_table_name` writes it. */
  fullName: string;
  /** TableInfoValue.version: bumped by every metadata update of the table. */
  version: number | null;
}

/** A TableInfoValue (`{"table_info":{"ident":{"table_id":…},"name":…,"catalog_name":…,
 *  "schema_name":…,…},"version":…}`): who the table is. */
export function parseTableInfo(value: Bytes): Parsed<TableIdentity> {
  const json = parseJsonObject(value, "table info");
  if (!json.ok) return json;
  const info = json.object.table_info;
  if (!isRecord(info)) return malformed(value, 'no "table_info" object');
  const ident = info.ident;
  const tableId = isRecord(ident) ? ident.table_id : undefined;
  if (!Number.isSafeInteger(tableId)) return malformed(value, 'no integer "ident.table_id"');
  const { catalog_name: catalog, schema_name: schema, name: table } = info;
  if (typeof catalog !== "string" || typeof schema !== "string" || typeof table !== "string") {
    return malformed(value, 'no string "catalog_name", "schema_name" and "name"');
  }
  const version = json.object.version;
  return {
    ok: true,
    tableId: tableId as number,
    catalog,
    schema,
    table,
    fullName: `${catalog}.${schema}.${table}`,
    version: Number.isSafeInteger(version) ? (version as number) : null,
  };
}

/** `<prefix>__table_name/<catalog>/<schema>/<table>`. */
export function tableNameKey(
  storeKeyPrefix: string,
  catalog: string,
  schema: string,
  table: string,
): string {
  return `${storeKeyPrefix}${TABLE_NAME_PREFIX}${catalog}/${schema}/${table}`;
}

/** `common_base::regex_pattern::NAME_PATTERN`, which table name keys must match. */
const NAME = "[a-zA-Z_:-][a-zA-Z0-9_:\\-.@#]*";
const TABLE_NAME_KEY = new RegExp(`^(${NAME})/(${NAME})/(${NAME})$`);

export function parseTableNameKey(
  storeKeyPrefix: string,
  storageKey: string,
): Parsed<{ catalog: string; schema: string; table: string }> {
  const prefix = storeKeyPrefix + TABLE_NAME_PREFIX;
  if (!storageKey.startsWith(prefix)) {
    return malformed(storageKey, `does not start with ${JSON.stringify(prefix)}`);
  }
  const match = TABLE_NAME_KEY.exec(storageKey.slice(prefix.length));
  if (!match) return malformed(storageKey, "is not <catalog>/<schema>/<table>");
  return {
    ok: true,
    catalog: match[1] as string,
    schema: match[2] as string,
    table: match[3] as string,
  };
}

/** A TableNameValue: `{"table_id":<id>}`. */
export function parseTableNameValue(value: Bytes): Parsed<{ tableId: number }> {
  const json = parseJsonObject(value, "table name value");
  if (!json.ok) return json;
  const tableId = json.object.table_id;
  if (!Number.isSafeInteger(tableId)) return malformed(value, 'no integer "table_id"');
  return { ok: true, tableId: tableId as number };
}

// ---------------------------------------------------------------------------------------------
// Runtime switches (key/runtime_switch.rs)

/** The stored keys of the switches under a store key prefix. */
export function switchKeys(storeKeyPrefix = ""): {
  recovery: string;
  pauseProcedure: string;
  maintenance: string;
  legacyMaintenance: string;
} {
  return {
    recovery: storeKeyPrefix + SWITCH_KEYS.recovery,
    pauseProcedure: storeKeyPrefix + SWITCH_KEYS.pauseProcedure,
    maintenance: storeKeyPrefix + SWITCH_KEYS.maintenance,
    legacyMaintenance: storeKeyPrefix + SWITCH_KEYS.legacyMaintenance,
  };
}

export interface Switches {
  /** `__switches/recovery`: datanodes started now ignore regions that do not exist. */
  recoveryMode: boolean;
  /** `__switches/pause_procedure`: the procedure manager refuses new procedures. */
  proceduresPaused: boolean;
  /** `__switches/maintenance` or the legacy `__maintenance`: region failover and GC are off. */
  maintenanceMode: boolean;
}

/** The switches, from the stored keys found (a switch is on when its key exists, whatever its
 *  value). Keys that are not switches are ignored. */
export function parseSwitches(storeKeyPrefix: string, presentKeys: Iterable<string>): Switches {
  const keys = switchKeys(storeKeyPrefix);
  const present = new Set(presentKeys);
  return {
    recoveryMode: present.has(keys.recovery),
    proceduresPaused: present.has(keys.pauseProcedure),
    maintenanceMode: present.has(keys.maintenance) || present.has(keys.legacyMaintenance),
  };
}

// ---------------------------------------------------------------------------------------------
// Our own keys

/** Where poison-store's records and audit entries live for a metasrv: `<prefix>/__poison_store/`.
 *  Inside the metasrv's chroot (its metadata snapshots carry them), outside every range it reads. */
export function ownMetaPrefix(storeKeyPrefix = ""): string {
  return storeKeyPrefix + OWN_META_PREFIX;
}
