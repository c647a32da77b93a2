import { RECORD_COLUMN_NAMES } from "../../core/codec.js";

/**
 * The MySQL/MariaDB driver's statements, apart from the code that runs them (src/drivers/mysql.ts):
 * the tables, the stored procedures of the single-key calls (with why each is race-free), and
 * the plain statements. Table and procedure names come in quoted.
 */

/** The key column's type: 1280 bytes, the longest key the contract allows in UTF-8. */
export const KEY_TYPE = "VARBINARY(1280)";

/** Each record column's type (after the key): one list for the keys table, the change log
 *  (src/drivers/mysql/watch.ts) and the procedures' variables. */
const COLUMN_TYPES: Record<(typeof RECORD_COLUMN_NAMES)[number], string> = {
  token: "VARBINARY(1024) NOT NULL",
  state: "VARBINARY(32) NOT NULL",
  created_at: "VARBINARY(64) NOT NULL",
  updated_at: "VARBINARY(64) NOT NULL",
  heartbeat_at: "VARBINARY(64) NULL",
  heartbeat_interval_ms: "INT NULL",
  operation: "BLOB NULL",
  owner: "BLOB NULL",
  error: "MEDIUMBLOB NULL",
  data: "MEDIUMBLOB NULL",
};

/** The record's columns after the key, in their stored order, with their types. */
export const RECORD_COLUMN_TYPES = RECORD_COLUMN_NAMES.map(
  (name) => [name, COLUMN_TYPES[name]] as const,
);

/** The columns of a record as `name TYPE` lines of a CREATE TABLE. */
export const RECORD_COLUMN_DDL = RECORD_COLUMN_TYPES.map(([name, type]) => `${name} ${type}`).join(
  ",\n      ",
);

export const RECORD_COLUMNS = `\`key\`, ${RECORD_COLUMN_NAMES.join(", ")}`;

/** Bump with any change to a procedure body: procedures are created once and never replaced,
 *  so a new body gets a new name and old and new code can run side by side. */
export const PROCEDURE_VERSION = "v4";

const ER_DUP_ENTRY = 1062;

export interface MysqlNames {
  keysTable: string;
  auditTable: string;
  putProcedure: string;
  removeProcedure: string;
}

/** The driver's DDL and statements over its (quoted) tables and procedures. */
export function mysqlStatements({
  keysTable,
  auditTable,
  putProcedure,
  removeProcedure,
}: MysqlNames) {
  const ddl = [
    `CREATE TABLE IF NOT EXISTS ${keysTable} (
    \`key\` ${KEY_TYPE} NOT NULL,
    ${RECORD_COLUMN_DDL},
    PRIMARY KEY (\`key\`)
  ) ENGINE = InnoDB`,
    `CREATE TABLE IF NOT EXISTS ${auditTable} (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    at VARBINARY(64) NOT NULL,
    action VARBINARY(32) NOT NULL,
    \`key\` VARBINARY(1280) NOT NULL,
    actor BLOB NOT NULL,
    reason MEDIUMBLOB NOT NULL,
    token VARBINARY(1024) NULL,
    record MEDIUMBLOB NULL,
    detail BLOB NULL,
    PRIMARY KEY (id),
    KEY by_key (\`key\`, id)
  ) ENGINE = InnoDB`,
  ];

  /** The columns of a key row as procedure variables (`v_token`, …): a row read INTO them is
   *  returned with one SELECT, so a retried read never sends an empty result set first. */
  const variables = RECORD_COLUMN_NAMES;
  const declared = RECORD_COLUMN_TYPES.map(
    ([name, type]) => `v_${name} ${type.replace(/ (NOT )?NULL$/, "")}`,
  );
  const intoVariables = `INTO ${variables.map((c) => `v_${c}`).join(", ")}`;
  const fromVariables = `p_key AS \`key\`, ${variables.map((c) => `v_${c} AS ${c}`).join(", ")}`;

  /*
   * Put-if-absent (procs v4). A plain INSERT either writes the row or fails with a duplicate
   * key (1062, caught by a CONTINUE handler): nothing else can tell "inserted" from "exists"
   * more cheaply, and an insert answers with no result set at all (the caller knows the record
   * it sent). Only when the key exists is the holder read and returned, whole.
   *
   * Alone (p_own_tx = 1) and without an audit entry, the INSERT is its own autocommit
   * transaction: one statement, no START TRANSACTION/COMMIT (the change log row, written by a
   * trigger, commits with it). The holder is then read, on the first try, by a consistent read
   * made after the INSERT saw the row: a put that answers "held by X" is linearized at that
   * read. But a consistent read can miss a row that the INSERT's duplicate check saw: InnoDB
   * marks a committing transaction committed (its row then counts as a duplicate without any
   * wait) a moment before it leaves the list of active transactions that read views are built
   * from (MariaDB 10.11, trx_t::commit_in_memory: commit_state() before deregister_rw()), and
   * every read view built while the committer is descheduled there is blind to its row. With a
   * consistent read on every try (v3), one put in a CI run under load missed 100 times in a row
   * and failed. So after a consistent read that found nothing, the later tries read with a
   * locking read (LOCK IN SHARE MODE): it reads the latest committed version, not a read view,
   * and waits for an active writer; in autocommit its shared lock ends with the statement. The
   * first try, the common path, costs what it did. When the locking read finds nothing either,
   * the holder deleted the row in between, and the INSERT is tried again.
   *
   * With an audit entry the INSERT and the entry share a transaction; in a caller's transaction
   * (batches, p_own_tx = 0) the duplicate check left a shared lock on the row (InnoDB keeps it
   * to the end of the transaction), and the holder is read under it (LOCK IN SHARE MODE: a
   * shared lock, so two batches reading the same holder never need to upgrade to exclusive and
   * deadlock), so the answer holds until the caller commits.
   */
  const putProcedureDdl = `CREATE PROCEDURE ${putProcedure} (
    IN p_key VARBINARY(1280), IN p_token VARBINARY(1024), IN p_state VARBINARY(32),
    IN p_created_at VARBINARY(64), IN p_updated_at VARBINARY(64), IN p_heartbeat_at VARBINARY(64),
    IN p_heartbeat_interval_ms INT, IN p_operation BLOB, IN p_owner BLOB, IN p_error MEDIUMBLOB, IN p_data MEDIUMBLOB,
    IN a_at VARBINARY(64), IN a_action VARBINARY(32), IN a_actor BLOB, IN a_reason MEDIUMBLOB,
    IN a_token VARBINARY(1024), IN a_record MEDIUMBLOB, IN p_own_tx TINYINT)
  MODIFIES SQL DATA
  BEGIN
    DECLARE v_tx TINYINT DEFAULT IF(p_own_tx = 1 AND a_action IS NOT NULL, 1, 0);
    DECLARE v_duplicate TINYINT DEFAULT 0;
    DECLARE v_missing TINYINT DEFAULT 0;
    DECLARE v_tries INT DEFAULT 0;
    ${declared.map((d) => `DECLARE ${d};`).join("\n      ")}
    DECLARE CONTINUE HANDLER FOR ${ER_DUP_ENTRY} SET v_duplicate = 1;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_missing = 1;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION
    BEGIN
      IF v_tx = 1 THEN ROLLBACK; END IF;
      RESIGNAL;
    END;
    IF v_tx = 1 THEN START TRANSACTION; END IF;
    attempt: LOOP
      SET v_duplicate = 0, v_missing = 0, v_tries = v_tries + 1;
      INSERT INTO ${keysTable} (${RECORD_COLUMNS})
        VALUES (p_key, p_token, p_state, p_created_at, p_updated_at, p_heartbeat_at,
                p_heartbeat_interval_ms, p_operation, p_owner, p_error, p_data);
      IF v_duplicate = 0 THEN
        IF a_action IS NOT NULL THEN
          INSERT INTO ${auditTable} (at, action, \`key\`, actor, reason, token, record)
            VALUES (a_at, a_action, p_key, a_actor, a_reason, a_token, a_record);
        END IF;
        IF v_tx = 1 THEN COMMIT; END IF;
        LEAVE attempt;
      END IF;
      IF p_own_tx = 1 AND v_tx = 0 AND v_tries = 1 THEN
        SELECT ${variables.join(", ")} ${intoVariables}
          FROM ${keysTable} WHERE \`key\` = p_key;
      ELSE
        SELECT ${variables.join(", ")} ${intoVariables}
          FROM ${keysTable} WHERE \`key\` = p_key LOCK IN SHARE MODE;
      END IF;
      IF v_missing = 0 THEN
        IF v_tx = 1 THEN COMMIT; END IF;
        SELECT ${fromVariables}, 0 AS inserted;
        LEAVE attempt;
      END IF;
      IF v_tries >= 100 THEN
        SIGNAL SQLSTATE '40001' SET MESSAGE_TEXT = 'put: the key was deleted and re-inserted under every attempt';
      END IF;
    END LOOP;
  END`;

  /*
   * Delete-if-token-matches (p_token NULL: any token, the operator's force-delete), answering
   * with the row as it stood: deleted (same token), conflict (the holder) or absent (nothing).
   *
   * MariaDB, alone (p_own_tx = 1): one autocommit DELETE … RETURNING removes and returns the
   * row. Whether it removed one is told by a session variable its RETURNING list sets
   * (ROW_COUNT() is -1 after a statement that returns rows). When it removed nothing, a read
   * tells absent from held by another token (the answer then is linearized at that read); a row
   * found with the same token was written again in between, and is deleted again. The read is a
   * consistent read, and when that finds nothing a locking read (LOCK IN SHARE MODE, the latest
   * committed version) before the answer "absent": a consistent read can miss a row whose
   * writer has just committed (see the put procedure above), and the DELETE, itself a locking
   * read, may have seen that row and refused it; "absent" would then tell a wrong token that
   * its delete succeeded while another token holds the key. Only the absent answer pays the
   * second read (a shared gap lock for one statement when the key is absent); a delete that
   * removed its row, and a refusal, cost what they did.
   *
   * In a caller's transaction (batches, audited removals), p_change and p_change_at (the change
   * type and time for the change log's delete trigger) are set as session variables around the
   * DELETE.
   *
   * MySQL (no DELETE … RETURNING), and in a caller's transaction on both: SELECT … FOR UPDATE
   * locks the row (or, when absent, the gap where it would be, so no put can insert it until
   * the commit) and returns it; the DELETE runs under that lock.
   */
  const removeProcedureDdl = (mariadb: boolean) =>
    mariadb
      ? `CREATE PROCEDURE ${removeProcedure} (
    IN p_key VARBINARY(1280), IN p_token VARBINARY(1024), IN p_own_tx TINYINT,
    IN p_change VARBINARY(16), IN p_change_at VARBINARY(64))
  MODIFIES SQL DATA
  BEGIN
    DECLARE v_missing TINYINT DEFAULT 0;
    DECLARE v_tries INT DEFAULT 0;
    ${declared.map((d) => `DECLARE ${d};`).join("\n      ")}
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_missing = 1;
    IF p_own_tx = 1 THEN
      SET @poison_store_removed = 0;
      DELETE FROM ${keysTable} WHERE \`key\` = p_key AND (p_token IS NULL OR token = p_token)
        RETURNING ${RECORD_COLUMNS}, (@poison_store_removed := 1) AS removed;
      IF @poison_store_removed = 0 AND p_token IS NOT NULL THEN
        attempt: LOOP
          SET v_tries = v_tries + 1, v_missing = 0;
          SELECT ${variables.join(", ")} ${intoVariables}
            FROM ${keysTable} WHERE \`key\` = p_key;
          IF v_missing = 1 THEN
            SET v_missing = 0;
            SELECT ${variables.join(", ")} ${intoVariables}
              FROM ${keysTable} WHERE \`key\` = p_key LOCK IN SHARE MODE;
            IF v_missing = 1 THEN LEAVE attempt; END IF;
          END IF;
          IF v_token <> p_token THEN
            SELECT ${fromVariables};
            LEAVE attempt;
          END IF;
          IF v_tries >= 100 THEN
            SIGNAL SQLSTATE '40001' SET MESSAGE_TEXT = 'remove: the key was re-written under every attempt';
          END IF;
          DELETE FROM ${keysTable} WHERE \`key\` = p_key AND token = p_token
            RETURNING ${RECORD_COLUMNS}, (@poison_store_removed := 1) AS removed;
          IF @poison_store_removed = 1 THEN LEAVE attempt; END IF;
        END LOOP;
      END IF;
    ELSE
      SET @poison_store_change = p_change, @poison_store_change_at = p_change_at;
      SELECT ${RECORD_COLUMNS} FROM ${keysTable} WHERE \`key\` = p_key FOR UPDATE;
      DELETE FROM ${keysTable} WHERE \`key\` = p_key AND (p_token IS NULL OR token = p_token);
      SET @poison_store_change = NULL, @poison_store_change_at = NULL;
    END IF;
  END`
      : `CREATE PROCEDURE ${removeProcedure} (
    IN p_key VARBINARY(1280), IN p_token VARBINARY(1024), IN p_own_tx TINYINT,
    IN p_change VARBINARY(16), IN p_change_at VARBINARY(64))
  MODIFIES SQL DATA
  BEGIN
    DECLARE EXIT HANDLER FOR SQLEXCEPTION
    BEGIN
      SET @poison_store_change = NULL, @poison_store_change_at = NULL;
      IF p_own_tx = 1 THEN ROLLBACK; END IF;
      RESIGNAL;
    END;
    IF p_own_tx = 1 THEN START TRANSACTION; END IF;
    SET @poison_store_change = p_change, @poison_store_change_at = p_change_at;
    SELECT ${RECORD_COLUMNS} FROM ${keysTable} WHERE \`key\` = p_key FOR UPDATE;
    DELETE FROM ${keysTable} WHERE \`key\` = p_key AND (p_token IS NULL OR token = p_token);
    SET @poison_store_change = NULL, @poison_store_change_at = NULL;
    IF p_own_tx = 1 THEN COMMIT; END IF;
  END`;

  /** A listing; `filtered` adds conditions on token, state and operation (NULL matches all). */
  const listing = (lowerBound: ">" | ">=", filtered: boolean) =>
    `SELECT * FROM ${keysTable} WHERE \`key\` ${lowerBound} ? AND \`key\` < ?${
      filtered
        ? " AND (? IS NULL OR token = ?) AND (? IS NULL OR state = ?) AND (? IS NULL OR operation = ?)"
        : ""
    } ORDER BY \`key\` LIMIT ?`;

  const sql = {
    put: `CALL ${putProcedure}(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    remove: `CALL ${removeProcedure}(?, ?, ?, ?, ?)`,
    // Reads select `*`: they also serve tables of an older layout, which only a write migrates.
    get: `SELECT * FROM ${keysTable} WHERE \`key\` = ?`,
    getToken: `SELECT token FROM ${keysTable} WHERE \`key\` = ?`,
    lock: `SELECT ${RECORD_COLUMNS} FROM ${keysTable} WHERE \`key\` = ? FOR UPDATE`,
    update: `UPDATE ${keysTable} SET updated_at = ?, state = coalesce(?, state),
    error = coalesce(?, error), heartbeat_at = coalesce(?, heartbeat_at),
    heartbeat_interval_ms = coalesce(?, heartbeat_interval_ms) WHERE \`key\` = ?`,
    audit: `INSERT INTO ${auditTable} (at, action, \`key\`, actor, reason, token, record, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    listFirst: listing(">=", false),
    listAfter: listing(">", false),
    listFirstFiltered: listing(">=", true),
    listAfterFiltered: listing(">", true),
    auditByPrefix: `SELECT * FROM ${auditTable}
     WHERE \`key\` >= ? AND \`key\` < ? AND id < ? ORDER BY id DESC LIMIT ?`,
    auditByKey: `SELECT * FROM ${auditTable}
     WHERE \`key\` = ? AND id < ? ORDER BY id DESC LIMIT ?`,
  };

  return { ddl, putProcedureDdl, removeProcedureDdl, sql };
}
