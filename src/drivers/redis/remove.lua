--[[
remove.lua: delete one or more poison keys, all or none, in one step.
Runs after prelude.lua (prepended when loaded), which defines read_present, record_pairs,
append_audit and append_change.

KEYS[1]          the key index (sorted set of storage keys)
KEYS[2]          the audit stream
KEYS[3]          the change stream (store.watch)
KEYS[4..3+n]     the record hashes, one per poison key, in the caller's order

ARGV[1]          the token that must hold every present key, or "" to remove whoever holds them
                 (an operator's force delete; tokens are never empty)
ARGV[2]          "1": append one audit entry per key removed; "": no audit
ARGV[3]          the change type for the change stream: "deleted" or "force-deleted"
ARGV[4]          the time of the change for the change stream (the audit entry's), or ""
ARGV[5..4+n]     the storage keys (the index members), same order as KEYS[4..]
ARGV[5+n]        e: how many expected-version values follow: 0, or 5 per key (a compare-and-delete)
ARGV[6+n..]      when e > 0, per key: present ("1" or ""), token, state, updated_at, heartbeat_at
                 ("" when none): the key must still be exactly so (absent when present is "")
then             when ARGV[2] == "1": the audit entry's field/value pairs (at, action, ...)

Returns (code 1 = OK; code 0 = REFUSED, which the runtime raises as POISON_CONFLICT, or for a
compare-and-delete decides again)
  {1, removed}    OK: removed = {i, record, ...} for each key i that was present and is now
                  deleted (absent keys are skipped).
  {0, conflicts}  REFUSED: some key is held by another token, or is not as expected; nothing was
                  removed. conflicts = {i, record, ...} for such keys that are present.
A record is the HMGET of COLUMNS (prelude.lua), in that order; it is read once per present key,
and the checks are made on it. Each key removed gets an entry in the change stream, with the
record removed.
]]
local n = #KEYS - 3
local token = ARGV[1]
local audited = ARGV[2] == "1"
local changeType = ARGV[3]
local changeAt = ARGV[4] ~= "" and ARGV[4] or nil
local e = tonumber(ARGV[5 + n])
local expectedAt = 6 + n
local auditAt = expectedAt + e

-- HMGET answers false for a missing field; the expected values use "" for none.
local function text(value)
  if value == false then
    return ""
  end
  return value
end

-- The state and update time as the driver reads them (codec.ts parseState, redis.ts fromValues):
-- the expected version was read that way, so a hash written by hand (no state, no updated_at)
-- still compares equal to itself.
local function state(record)
  if record[2] == "in-progress" then
    return "in-progress"
  end
  return "poisoned"
end
local function updated(record)
  return text(record[4] or record[3])
end

local present = {}
local conflicts = {}
local changed = false
for i = 1, n do
  local at = expectedAt + (i - 1) * 5
  local record = read_present(KEYS[3 + i])
  if record then
    local holder = text(record[1])
    if token ~= "" and holder ~= token then
      conflicts[#conflicts + 1] = i
      conflicts[#conflicts + 1] = record
    elseif e > 0 and (ARGV[at] ~= "1" or holder ~= ARGV[at + 1] or state(record) ~= ARGV[at + 2]
        or updated(record) ~= ARGV[at + 3] or text(record[5]) ~= ARGV[at + 4]) then
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
  local fields = record_pairs(record)
  redis.call("DEL", KEYS[3 + i])
  redis.call("ZREM", KEYS[1], ARGV[4 + i])
  if audited then
    append_audit(KEYS[2], ARGV[4 + i], auditAt, fields)
  end
  append_change(KEYS[3], ARGV[4 + i], changeType, changeAt, fields)
end
return {1, present}
