--[[
remove.lua: delete one or more poison keys, all or none, in one step.
Runs after prelude.lua (prepended when loaded), which defines field, column_pairs, append_audit
and append_change.

KEYS[1]          the key index (sorted set of storage keys)
KEYS[2]          the audit stream
KEYS[3]          the change stream (store.watch)
KEYS[4..3+n]     the record hashes, one per poison key, in the caller's order

ARGV[1]          the token that must hold every present key, or "" to remove whoever holds them
                 (an operator's force delete; tokens are never empty)
ARGV[2..1+n]     the storage keys (the index members), same order as KEYS[4..]
A plain delete (deletePoison, deletePoisons) passes nothing more: change type "deleted", no
time, no expected version, no audit. Otherwise:
ARGV[2+n]        the change type for the change stream: "deleted" or "force-deleted"
ARGV[3+n]        the time of the change for the change stream (the audit entry's), or ""
ARGV[4+n]        e: how many expected-version values follow: 0, or 5 per key (a compare-and-delete)
ARGV[5+n..]      when e > 0, per key: present ("1" or ""), token, state, updated_at, heartbeat_at
                 ("" when none): the key must still be exactly so (absent when present is "")
then             the audit entry's field/value pairs (at, action, ...), if any: one entry is
                 appended per key removed

Returns (code 1 = OK; code 0 = REFUSED, which the runtime raises as POISON_CONFLICT, or for a
compare-and-delete decides again)
  {1, removed}    OK: removed = {i, record, ...} for each key i that was present and is now
                  deleted (absent keys are skipped).
  {0, conflicts}  REFUSED: some key is held by another token, or is not as expected; nothing was
                  removed. conflicts = {i, record, ...} for such keys that are present.
A record is its hash's field/value pairs (HGETALL, only the record's columns: see column_pairs),
read once per present key; the checks are made on it. Each key removed gets an entry in the
change stream, with the record removed.
]]
local n = #KEYS - 3
local token = ARGV[1]
local changeType = "deleted"
local changeAt = nil
local e = 0
local expectedAt = 5 + n
local auditAt = #ARGV + 1
if #ARGV > 1 + n then
  changeType = ARGV[2 + n]
  changeAt = ARGV[3 + n] ~= "" and ARGV[3 + n] or nil
  e = tonumber(ARGV[4 + n])
  auditAt = expectedAt + e
end
local audited = #ARGV >= auditAt

-- The state and update time as the driver reads them (codec.ts parseState, redis.ts columnsOf):
-- the expected version was read that way, so a hash written by hand (no state, no updated_at)
-- still compares equal to itself. A missing field reads as "", as the expected values write it.
local function text(value)
  if value == false then
    return ""
  end
  return value
end
local function state(record)
  if field(record, "state") == "in-progress" then
    return "in-progress"
  end
  return "poisoned"
end
local function updated(record)
  return text(field(record, "updated_at") or field(record, "created_at"))
end

local present = {}
local conflicts = {}
local changed = false
for i = 1, n do
  local at = expectedAt + (i - 1) * 5
  local record = redis.call("HGETALL", KEYS[3 + i])
  if #record > 0 then
    record = column_pairs(record)
    local holder = text(field(record, "token"))
    if token ~= "" and holder ~= token then
      conflicts[#conflicts + 1] = i
      conflicts[#conflicts + 1] = record
    elseif e > 0 and (ARGV[at] ~= "1" or holder ~= ARGV[at + 1] or state(record) ~= ARGV[at + 2]
        or updated(record) ~= ARGV[at + 3] or text(field(record, "heartbeat_at")) ~= ARGV[at + 4]) then
      changed = true
      conflicts[#conflicts + 1] = i
      conflicts[#conflicts + 1] = record
    else
      present[#present + 1] = i
      present[#present + 1] = record
    end
  elseif e > 0 and ARGV[at] == "1" then
    changed = true
  end
end
if #conflicts > 0 or changed then
  return {0, conflicts}
end

for p = 1, #present, 2 do
  local i = present[p]
  local record = present[p + 1]
  redis.call("DEL", KEYS[3 + i])
  redis.call("ZREM", KEYS[1], ARGV[1 + i])
  if audited then
    append_audit(KEYS[2], ARGV[1 + i], auditAt, record)
  end
  append_change(KEYS[3], ARGV[1 + i], changeType, changeAt, record)
end
return {1, present}
