/**
 * poison-store: poison keys for control planes. See README.md.
 */
export {
  type AdminPrincipal,
  type AdminRole,
  type AdminToken,
  type AdminTokenFile,
  type AuthFailureDelay,
  generateAdminToken,
  hashAdminToken,
  parseAdminTokens,
  readAdminTokens,
} from "./admin/auth.js";
export type { PollingOptions } from "./admin/events.js";
export {
  type AdminAnonymousAccess,
  type AdminMetricsSource,
  type AdminRequestLog,
  createPoisonAdmin,
  type PoisonAdmin,
  type PoisonAdminOptions,
} from "./admin/handler.js";
export type { AdminRecord } from "./admin/routes.js";
export {
  OBSERVED_CALLS,
  type StoreCallEvent,
  type StoreCallListener,
  type StoreCallName,
} from "./core/calls.js";
export type { PoisonStore, PoisonStoreClient } from "./core/contract.js";
export {
  type AuditIntent,
  type AuditQuery,
  type DriverCapabilities,
  type InitOptions,
  type ListFilter,
  type ListQuery,
  matchesFilter,
  type PoisonDriver,
  type PutOutcome,
  type RecordPatch,
  type RemoveOutcome,
  sameVersion,
  type UpdateOutcome,
} from "./core/driver.js";
export {
  BackendConfigurationError,
  BackendUnavailableError,
  ErrorCode,
  HolderAliveError,
  InvalidArgumentError,
  isPoisonStoreError,
  MissingDependencyError,
  PoisonConflictError,
  PoisonLostError,
  PoisonNotFoundError,
  PoisonStoreError,
  ReadOnlyStoreError,
  StoreClosedError,
} from "./core/errors.js";
export { compareKeys } from "./core/keys.js";
export {
  aliveForRefusal,
  DEFAULT_CLOCK_SKEW_MS,
  describeLiveness,
  LIVENESS_FACTOR,
  type Liveness,
  livenessOf,
} from "./core/liveness.js";
export type {
  AuditAction,
  AuditActor,
  AuditEntry,
  AuditLogOptions,
  AuditPage,
  DeletePoisonOptions,
  DeletePoisonsResult,
  ForceDeleteOptions,
  ListPoisonsOptions,
  ListState,
  PoisonErrorInfo,
  PoisonPage,
  PoisonRecord,
  PoisonState,
  PutPoisonInfo,
  PutPoisonsResult,
} from "./core/records.js";
export { type StoreWhere, shellQuote, storeFlags } from "./core/shell.js";
export {
  createPoisonStore,
  DEFAULT_NAMESPACE,
  DEFAULT_TIMEOUT_MS,
  describeError,
  type PoisonStoreOptions,
  processOwner,
} from "./core/store.js";
export { MAX_KEY_BYTES, MAX_TIMER_MS, MAX_TOKEN_BYTES } from "./core/validation.js";
export {
  type ChangeEvent,
  type ChangeStream,
  type ChangeType,
  DEFAULT_WATCH_MAX_KEYS,
  DEFAULT_WATCH_POLL_INTERVAL_MS,
  type DriverChange,
  type DriverWatch,
  type DriverWatchEvent,
  type DriverWatchQuery,
  MAX_QUEUED_CHANGES,
  type WatchOptions,
} from "./core/watch.js";
export {
  DEFAULT_ETCD_MAX_REQUEST_BYTES,
  type EtcdHttpRequest,
  type EtcdHttpResponse,
  type EtcdTransport,
  EtcdTransportError,
} from "./drivers/etcd/gateway.js";
export {
  DEFAULT_ETCD_META_PREFIX,
  type EtcdDriverOptions,
  etcdDriver,
  poisonValue,
} from "./drivers/etcd.js";
export { type MemoryDriverOptions, memoryDriver } from "./drivers/memory.js";
export {
  type MysqlDriverOptions,
  type MysqlPoolLike,
  mysqlDriver,
} from "./drivers/mysql.js";
export {
  type PgClientLike,
  type PgPoolLike,
  type PgQueryConfig,
  type PostgresDriverOptions,
  postgresDriver,
} from "./drivers/postgres.js";
export {
  DEFAULT_REDIS_KEY_PREFIX,
  type RedisClientLike,
  type RedisDriverOptions,
  redisDriver,
} from "./drivers/redis.js";
export { SQLITE_SCHEMA_VERSION, type SqliteDriverOptions, sqliteDriver } from "./drivers/sqlite.js";
export type { TlsOptions } from "./drivers/tls.js";
export { greptimeLayoutOf } from "./greptimedb/driver.js";
export {
  type ClearAdvice,
  explainPoison,
  explainPoisons,
  type GreptimeClusterState,
  type GreptimeTableRef,
  greptimeClusterState,
  type PoisonExplanation,
} from "./greptimedb/explain.js";
export type {
  ProcedureMessage,
  ProcedureStatus,
  ProcedureSummary,
  Switches as GreptimeSwitches,
} from "./greptimedb/layout.js";
export type {
  GreptimeBackend,
  GreptimeLayout,
  GreptimeLayoutOptions,
} from "./greptimedb/options.js";
export {
  type CleanupOutcome,
  GuardErrorCode,
  OperationPoisonedError,
  PoisonCleanupError,
  type RefusalReason,
  ResourcePoisonedError,
  RunSettledError,
} from "./guard/errors.js";
export {
  GUARD_RUN_CHANNEL,
  GUARD_RUN_OUTCOMES,
  type GuardEvent,
  type GuardEventOf,
  type GuardEventType,
  type GuardListener,
  type GuardLogger,
  type GuardRunOutcome,
  type GuardRunSettled,
} from "./guard/events.js";
export {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_RETRY,
  DEFAULT_STORE_RETRY,
  type GuardContext,
  type GuardedRun,
  PoisonGuard,
  type PoisonGuardOptions,
  type RetryOptions,
} from "./guard/guard.js";
export {
  type ErrorMarks,
  isMarkedCleanPoisons,
  isMarkedRetryable,
  markCleanPoisons,
  markRetryable,
} from "./guard/marks.js";
export {
  type CollectMetricsOptions,
  collectMetrics,
  DEFAULT_CALL_BUCKETS,
  DEFAULT_METRICS_INTERVAL_MS,
  DEFAULT_METRICS_MAX_KEYS,
  type MetricsRegistry,
  type PoisonMetrics,
} from "./observability/metrics.js";
export {
  DEFAULT_NOTIFY_CHECK_INTERVAL_MS,
  DEFAULT_NOTIFY_MAX_KEYS,
  DEFAULT_NOTIFY_RETRY,
  type NotificationKind,
  type NotificationPayload,
  type Notifier,
  type NotifierEvent,
  type NotifyOptions,
  notify,
} from "./observability/notify.js";
export { webhookLabel } from "./observability/webhook.js";
export {
  type OpenPoisonStoreOptions,
  openPoisonStore,
  redactUrl,
  supportedUrlForms,
} from "./open.js";
