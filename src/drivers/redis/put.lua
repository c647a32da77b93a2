--[[
put.lua: put-if-absent of one or more poison keys under one token, all or none, in one step.
Runs after prelude.lua (prepended when loaded), which defines field, append_audit and
append_change.

KEYS[1]          the key index: a sorted set whose members are storage keys, every score 0
KEYS[2]          the audit stream
KEYS[3]          the change stream (store.watch)
KEYS[4..3+n]     the record hashes, one per poison key, in the caller's order

ARGV[1]          the token (never empty)
ARGV[2]          the record as ONE argument: a JSON array of its hash field/value pairs
                 ["token", ARGV[1], "state", ..., "created_at", ...], fields not stored left
                 out; decoded (cjson) only when something is written
ARGV[3..2+n]     the storage keys (the index members), same order as KEYS[4..]
ARGV[3+n..]      present only for an audited put: the audit entry's field/value pairs (at,
                 action, ...); one entry is appended per key this call writes

Returns (code 1 = OK; code 0 = CONFLICT, which the runtime raises as POISON_CONFLICT)
  {1}             OK: every key was absent and is now written (the caller has the records).
  {1, held}       OK: some keys were already held by the token (left untouched), the others
                  written. held = {i, record, i, record, ...} for each key i already held.
  {0, conflicts}  CONFLICT: some key is held by another token; nothing was written.
                  conflicts = {i, record, ...} for each such key i.
A record is the HGETALL of its hash: {field, value, ...}.

Each key written also gets a "put" entry in the change stream. The common case (one absent key)
costs HGETALL (empty: absent), HSET, ZADD and XADD; a conflict costs the HGETALL alone, which
both finds the key present and reads the holder's record.
One argument for the whole record, not one per field: each argument costs the client (ioredis
encodes them one by one) far more than the decode costs here.
]]
local n = #KEYS - 3
local token = ARGV[1]
local auditAt = 3 + n
local audited = #ARGV >= auditAt

local held = nil
local isHeld = nil
local conflicts = nil
for i = 1, n do
  local record = redis.call("HGETALL", KEYS[3 + i])
  if #record > 0 then
    if field(record, "token") == token then
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

local fields = nil
for i = 1, n do
  if not (isHeld and isHeld[i]) then
    fields = fields or cjson.decode(ARGV[2])
    redis.call("HSET", KEYS[3 + i], unpack(fields))
    redis.call("ZADD", KEYS[1], 0, ARGV[2 + i])
    if audited then
      append_audit(KEYS[2], ARGV[2 + i], auditAt, fields)
    end
    append_change(KEYS[3], ARGV[2 + i], "put", nil, fields)
  end
end
if held then
  return {1, held}
end
return {1}
