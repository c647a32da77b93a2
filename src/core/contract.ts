import type { StoreCallListener } from "./calls.js";
import type {
  AuditLogOptions,
  AuditPage,
  DeletePoisonOptions,
  DeletePoisonsResult,
  ForceDeleteOptions,
  ListPoisonsOptions,
  PoisonPage,
  PoisonRecord,
  PutPoisonInfo,
  PutPoisonsResult,
} from "./records.js";
import type { ChangeStream, WatchOptions } from "./watch.js";

/**
 * The core contract (SPEC §2), the same shape as GreptimeDB's `PoisonStore` trait.
 *
 * Every call is atomic and linearizable: of any number of concurrent `tryPutPoison` calls on one
 * absent key with different tokens, exactly one succeeds.
 */
export interface PoisonStore {
  /** Put the poison key. Absent: written, owned by `token`. Present with the same token: ok
   *  (idempotent). Present with another token: rejects with PoisonConflictError. */
  tryPutPoison(key: string, token: string): Promise<void>;
  /** Delete the poison key. Absent: ok (idempotent). Present with the same token: deleted.
   *  Present with another token: rejects with PoisonConflictError, and the key stays. */
  deletePoison(key: string, token: string): Promise<void>;
  /** The token that holds `key`, or null when the key is absent. */
  getPoison(key: string): Promise<string | null>;
}

/**
 * What `openPoisonStore` returns: the core contract plus the operator's view of SPEC §3, on
 * every backend.
 */
export interface PoisonStoreClient extends PoisonStore {
  /** The backend's name: `memory`, `sqlite`, `postgres`, `mysql`, `redis` or `etcd`. */
  readonly backend: string;
  /** The namespace prefixed to every stored key. */
  readonly namespace: string;
  /** Where the store is, safe to print: the URL it was opened with (password redacted), or the
   *  driver's description. Messages that suggest a command name it as `--store`. */
  readonly location: string;

  /** As {@link PoisonStore.tryPutPoison}, recording what runs and where. `info` is written only
   *  when the key is absent; an idempotent put by the same token leaves the record as it was. */
  tryPutPoison(key: string, token: string, info?: PutPoisonInfo): Promise<void>;
  /** As {@link PoisonStore.deletePoison}; with `options.audit`, the delete is audited. */
  deletePoison(key: string, token: string, options?: DeletePoisonOptions): Promise<void>;

  /**
   * Put several keys under one token, all or none, in one atomic step. Keys already held by the
   * same token count as put. If any key is held by another token, nothing is written and the
   * call rejects with PoisonConflictError for the first such key (in the order given).
   * Resolves with the records as they now stand, in the order given, and the keys this call
   * wrote (the others were already held by the token: a resumed operation).
   */
  tryPutPoisons(
    keys: readonly string[],
    token: string,
    info?: PutPoisonInfo,
  ): Promise<PutPoisonsResult>;
  /** Delete several keys held by one token, all or none, in one atomic step. Absent keys are
   *  skipped. If any key is held by another token, nothing is deleted (PoisonConflictError).
   *  Resolves with the keys it removed (a key found absent was cleared by someone else). */
  deletePoisons(keys: readonly string[], token: string): Promise<DeletePoisonsResult>;

  /** Whether the backend holds this library's storage (the SQLite file, the SQL tables); false
   *  means nothing was ever written there. Creates nothing. Always true on memory, Redis, etcd. */
  exists(): Promise<boolean>;

  /** The whole record, or null when the key is absent. */
  inspectPoison(key: string): Promise<PoisonRecord | null>;
  /** One page of records ordered by key (UTF-8 byte order); memory bounded by the page. */
  listPoisons(options?: ListPoisonsOptions): Promise<PoisonPage>;
  /**
   * The owner records why it failed: state becomes `poisoned` with the error. Token-checked:
   * PoisonConflictError when another token holds the key, PoisonNotFoundError when it is absent.
   */
  markPoisoned(key: string, token: string, error: unknown): Promise<PoisonRecord>;
  /**
   * As {@link markPoisoned} for several keys held by one token, all or none, in one atomic step.
   * If any key is held by another token (PoisonConflictError) or absent (PoisonNotFoundError),
   * nothing is changed. Resolves with the records as they now stand, in the order given.
   */
  markPoisons(keys: readonly string[], token: string, error: unknown): Promise<PoisonRecord[]>;
  /**
   * The owner's sign of life: sets `heartbeatAt` (and `updatedAt`) of several keys held by one
   * token to now, all or none, token-checked like {@link markPoisons}. State and error are left
   * as they are. With `heartbeatIntervalMs`, records it too (the promised interval). Nothing in
   * the library ever deletes a key because its heartbeat is old.
   */
  touchPoisons(
    keys: readonly string[],
    token: string,
    options?: { heartbeatIntervalMs?: number },
  ): Promise<PoisonRecord[]>;
  /**
   * An operator's recovery: delete the key whoever holds it, writing an audit entry in the same
   * atomic step. With `expectedToken`, refuses (PoisonConflictError) if the holder differs.
   * Refuses a live holder (HolderAliveError, SPEC §7) unless `evenIfAlive`; the liveness is
   * decided on the very record the delete removes (a compare-and-delete: a heartbeat landing in
   * between makes it decide again). Resolves with the removed record, or null if the key was
   * already absent (nothing audited).
   */
  forceDeletePoison(key: string, options: ForceDeleteOptions): Promise<PoisonRecord | null>;
  /**
   * As {@link forceDeletePoison} for several keys, all or none, in one atomic audited step (one
   * audit entry per key removed). Refuses if any present key is live (unless `evenIfAlive`) or,
   * with `expectedToken`, held by another token. Resolves with the records removed; absent keys
   * are skipped. More keys than one atomic step of the backend allows is InvalidArgumentError.
   */
  forceDeletePoisons(keys: readonly string[], options: ForceDeleteOptions): Promise<PoisonRecord[]>;
  /** The recoveries and manual puts, newest first. */
  auditLog(options?: AuditLogOptions): Promise<AuditPage>;
  /**
   * Changes to keys under `prefix`, live (SPEC §7): an async iterable of `{ type, key, record?,
   * at }` that ends when `signal` aborts (or `close()`, or the store closes). From the driver's
   * native change feed when it has one, else by comparing listings (bounded; see
   * docs/OBSERVABILITY.md). `resync` says changes may have been missed: re-list.
   */
  watch(options?: WatchOptions): ChangeStream;
  /** Call `listener` after every public call settles, with its method, duration and outcome
   *  (for metrics). Returns a function that removes it. */
  onCall(listener: StoreCallListener): () => void;
  /**
   * Release connections. Pending calls settle first; later calls reject with StoreClosedError.
   * Bounded like a call: if releasing does not finish within `timeoutMs` (a backend that went
   * away mid-handshake), it rejects with BackendUnavailableError instead of hanging. Calling it
   * again returns the same promise.
   */
  close(): Promise<void>;
}
