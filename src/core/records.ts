/** The records a poison key carries, and the audit trail of recoveries (SPEC §3). */

/** `in-progress`: an operation holds the key now (or died holding it). `poisoned`: the owner failed and left it. */
export type PoisonState = "in-progress" | "poisoned";

/** What `listPoisons` can filter on: a stored state, or `stale` (in-progress and not live: the
 *  holder stopped sending heartbeats, see `livenessOf`). */
export type ListState = PoisonState | "stale";

/** Why the owner failed, as recorded by `markPoisoned`. */
export interface PoisonErrorInfo {
  name: string;
  message: string;
  stack?: string;
  /** ISO-8601 UTC time the failure was recorded. */
  at: string;
}

/** Everything stored with a poison key, written atomically with it. */
export interface PoisonRecord {
  key: string;
  token: string;
  state: PoisonState;
  /** ISO-8601, UTC. */
  createdAt: string;
  /** ISO-8601, UTC: the last change of state, error or heartbeat. */
  updatedAt: string;
  /** ISO-8601, UTC: the last sign of life from the owner, when it sends heartbeats. */
  heartbeatAt?: string;
  /** How often the owner promised a heartbeat (the guard writes it): the record is *live* while
   *  its last heartbeat is younger than 3 intervals. */
  heartbeatIntervalMs?: number;
  /** What ran, for example `alter-table`. */
  operation?: string;
  /** Where it ran, for example `host-a:4242`. */
  owner?: string;
  error?: PoisonErrorInfo;
  /** JSON the operation chose to keep for its repair. */
  data?: unknown;
}

/** The optional third argument of `tryPutPoison`. */
export interface PutPoisonInfo {
  operation?: string;
  owner?: string;
  /** Any JSON value (at most 64 KiB once serialized). Stored as its JSON round trip. */
  data?: unknown;
  /** The owner promises a heartbeat this often (`touchPoisons`); the record then starts with
   *  `heartbeatAt` = now, so it is live from the moment it is written. */
  heartbeatIntervalMs?: number;
  /** Set for a manual put by a person: the put is then written to the audit log. */
  audit?: AuditActor;
}

/** What `tryPutPoisons` resolves with. */
export interface PutPoisonsResult {
  /** The records as they now stand, in the order the keys were given. */
  records: PoisonRecord[];
  /** The keys this call wrote; the others were already held by the same token. */
  created: string[];
}

/** Who did a manual action, and why. */
export interface AuditActor {
  actor: string;
  reason: string;
}

/** What an audit entry records. */
export type AuditAction = "put" | "delete" | "force-delete";

/** One entry of the audit log: a recovery or a manual put, kept durably in the backend. */
export interface AuditEntry {
  /** Opaque, unique, increasing within a backend. */
  id: string;
  /** ISO-8601, UTC. */
  at: string;
  action: AuditAction;
  key: string;
  actor: string;
  reason: string;
  /** The token presented by the action (put, delete) or expected by it (force-delete), if any. */
  token?: string;
  /** The record as it stood: the one removed (delete, force-delete) or written (put). */
  record?: PoisonRecord;
  /** A force-delete that overrode a live holder (`evenIfAlive: true`). */
  evenIfAlive?: true;
}

/** Options of `listPoisons`. */
export interface ListPoisonsOptions {
  /** Only keys that start with this string (matched literally: `%`, `_`, `*` have no meaning). */
  prefix?: string;
  /** Page size, 1..1000; default 100. */
  limit?: number;
  /** The `cursor` of the previous page (of the same prefix and filters). */
  cursor?: string | null;
  /** Only records in this state; `stale` is in-progress and not live. */
  state?: ListState;
  /** Only records held by this token. */
  token?: string;
  /** Only records of this operation. */
  operation?: string;
}

/** One page of `listPoisons`. `cursor` is null on the last page. With filters, a page may hold
 *  fewer records than `limit` (even none) while `cursor` is not null: keep following it. */
export interface PoisonPage {
  records: PoisonRecord[];
  cursor: string | null;
}

/** Options of `auditLog`. */
export interface AuditLogOptions {
  /** Only entries about this exact key. */
  key?: string;
  /** Page size, 1..1000; default 100. */
  limit?: number;
  cursor?: string | null;
}

/** One page of `auditLog`, newest first. */
export interface AuditPage {
  entries: AuditEntry[];
  cursor: string | null;
}

/** Options of `forceDeletePoison` and `forceDeletePoisons`. */
export interface ForceDeleteOptions extends AuditActor {
  /** Refuse (PoisonConflictError) unless the key is held by this token. */
  expectedToken?: string;
  /** Delete even a live holder's key (HolderAliveError otherwise); the audit entry says so. */
  evenIfAlive?: boolean;
}

/** What `deletePoisons` resolves with. */
export interface DeletePoisonsResult {
  /** The keys this call removed; the others were already absent. */
  removed: string[];
}

/** Options of `deletePoison`. */
export interface DeletePoisonOptions {
  /** Set for a delete by a person: the delete is then written to the audit log. */
  audit?: AuditActor;
}
