--[[
put.lua: put-if-absent of one or more poison keys under one token, all or none, in one step.
Runs after prelude.lua (prepended when loaded), which defines read_record, append_audit and
CHANGES_MAXLEN (the "put" change entry is append_change's layout, written inline).

KEYS[1]          the key index: a sorted set whose members are storage keys, every score 0
KEYS[2]          the audit stream
KEYS[3]          the change stream (store.watch)
KEYS[4..3+n]     the record hashes, one per poison key, in the caller's order

ARGV[1]          the token (never empty)
ARGV[2]          "1": append one audit entry per key this call writes; "": no audit
ARGV[3..2+n]     the storage keys (the index members), same order as KEYS[4..]
ARGV[3+n]        m: the number of record field/value pairs that follow
ARGV[4+n..]      the record's field/value pairs (2m values: token, state, created_at, ...)
then             when ARGV[2] == "1": the audit entry's field/value pairs (at, action, ...)

Returns (code 1 = OK; code 0 = CONFLICT, which the runtime raises as POISON_CONFLICT)
  {1}             OK: every key was absent and is now written (the caller has the records).
  {1, held}       OK: some keys were already held by the token (left untouched), the others
                  written. held = {i, record, i, record, ...} for each key i already held.
  {0, conflicts}  CONFLICT: some key is held by another token; nothing was written.
                  conflicts = {i, record, ...} for each such key i.
A record is the HMGET of COLUMNS (prelude.lua), in that order.

Each key written also gets a "put" entry in the change stream. The common case (one absent key)
costs EXISTS, HSET, ZADD and XADD; the stored record is read only for a key that is present.
]]
local n = #KEYS - 3
local token = ARGV[1]
local audited = ARGV[2] == "1"
local m = tonumber(ARGV[3 + n])
local fieldsAt = 4 + n
local auditAt = fieldsAt + 2 * m

local held = nil
local isHeld = nil
local conflicts = nil
for i = 1, n do
  local record = read_record(KEYS[3 + i])
  if record then
    if record[1] == token then
      held = held or {}
      held[#held + 1] = i
      held[#held + 1] = record
      isHeld = isHeld or {}
      isHeld[i] = true
    else
      -- Another token, or a hash without a token (written by hand): never overwrite it.
      conflicts = conflicts or {}
      conflicts[#conflicts + 1] = i
      conflicts[#conflicts + 1] = record
    end
  end
end
if conflicts then
  return {0, conflicts}
end

-- The record's pairs are passed straight from ARGV (unpack as the last argument): no table is
-- built per call on the common path.
for i = 1, n do
  if not (isHeld and isHeld[i]) then
    redis.call("HSET", KEYS[3 + i], unpack(ARGV, fieldsAt, auditAt - 1))
    redis.call("ZADD", KEYS[1], 0, ARGV[2 + i])
    if audited then
      append_audit(KEYS[2], ARGV[2 + i], auditAt, {unpack(ARGV, fieldsAt, auditAt - 1)})
    end
    redis.call("XADD", KEYS[3], "MAXLEN", "~", CHANGES_MAXLEN, "*", "k", ARGV[2 + i], "t", "put",
      unpack(ARGV, fieldsAt, auditAt - 1))
  end
end
if held then
  return {1, held}
end
return {1}
