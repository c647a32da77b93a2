--[[
remove.lua: delete one or more poison keys, all or none, in one step.

KEYS[1]          the key index (sorted set of storage keys)
KEYS[2]          the audit stream
KEYS[3..2+n]     the record hashes, one per poison key, in the caller's order

ARGV[1]          the token that must hold every present key, or "" to remove whoever holds them
                 (an operator's force delete; tokens are never empty)
ARGV[2]          "1": append one audit entry per key removed; "": no audit
ARGV[3..2+n]     the storage keys (the index members), same order as KEYS[3..]
ARGV[3+n]        e: how many expected-version values follow: 0, or 5 per key (a compare-and-delete)
ARGV[4+n..]      when e > 0, per key: present ("1" or ""), token, state, updated_at, heartbeat_at
                 ("" when none): the key must still be exactly so (absent when present is "")
then             when ARGV[2] == "1": the audit entry's field/value pairs (at, action, ...)

Returns
  {1, removed}    OK: removed = {i, HGETALL, ...} for each key i that was present and is now
                  deleted (absent keys are skipped).
  {0, conflicts}  REFUSED: some key is held by another token, or is not as expected; nothing was
                  removed. conflicts = {i, HGETALL, ...} for such keys that are present.
]]
local n = #KEYS - 2
local token = ARGV[1]
local audited = ARGV[2] == "1"
local e = tonumber(ARGV[3 + n])
local expectedAt = 4 + n
local auditAt = expectedAt + e

-- The expected version of key i, or nil when the call is not a compare-and-delete.
local function expected(i)
  if e == 0 then
    return nil
  end
  local at = expectedAt + (i - 1) * 5
  return {present = ARGV[at] == "1", token = ARGV[at + 1], state = ARGV[at + 2],
          updated = ARGV[at + 3], heartbeat = ARGV[at + 4]}
end

local function field(i, name)
  local value = redis.call("HGET", KEYS[2 + i], name)
  if value == false then
    return ""
  end
  return value
end

local present = {}
local conflicts = {}
local changed = false
for i = 1, n do
  local record = redis.call("HGETALL", KEYS[2 + i])
  local want = expected(i)
  if #record > 0 then
    local holder = field(i, "token")
    if token ~= "" and holder ~= token then
      conflicts[#conflicts + 1] = i
      conflicts[#conflicts + 1] = record
    elseif want ~= nil and (not want.present or holder ~= want.token or field(i, "state") ~= want.state
        or field(i, "updated_at") ~= want.updated or field(i, "heartbeat_at") ~= want.heartbeat) then
      changed = true
      conflicts[#conflicts + 1] = i
      conflicts[#conflicts + 1] = record
    else
      present[#present + 1] = i
      present[#present + 1] = record
    end
  elseif want ~= nil and want.present then
    changed = true
  end
end
if #conflicts > 0 or changed then
  return {0, conflicts}
end

for p = 1, #present, 2 do
  local i = present[p]
  local record = present[p + 1]
  redis.call("DEL", KEYS[2 + i])
  redis.call("ZREM", KEYS[1], ARGV[2 + i])
  if audited then
    local entry = {"key", ARGV[2 + i]}
    for j = auditAt, #ARGV do
      entry[#entry + 1] = ARGV[j]
    end
    for j = 1, #record, 2 do
      entry[#entry + 1] = "r:" .. record[j]
      entry[#entry + 1] = record[j + 1]
    end
    redis.call("XADD", KEYS[2], "*", unpack(entry))
  end
end
return {1, present}
