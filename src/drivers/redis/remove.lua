--[[
remove.lua: delete one or more poison keys, all or none, in one step.

KEYS[1]          the key index (sorted set of storage keys)
KEYS[2]          the audit stream
KEYS[3..2+n]     the record hashes, one per poison key, in the caller's order

ARGV[1]          the token that must hold every present key, or "" to remove whoever holds them
                 (an operator's force delete; tokens are never empty)
ARGV[2]          "1": append one audit entry per key removed; "": no audit
ARGV[3..2+n]     the storage keys (the index members), same order as KEYS[3..]
ARGV[3+n..]      when ARGV[2] == "1": the audit entry's field/value pairs (at, action, ...)

Returns
  {1, removed}    OK: removed = {i, HGETALL, ...} for each key i that was present and is now
                  deleted (absent keys are skipped).
  {0, conflicts}  CONFLICT: some key is held by another token; nothing was removed.
                  conflicts = {i, HGETALL, ...}.
]]
local n = #KEYS - 2
local token = ARGV[1]
local audited = ARGV[2] == "1"
local auditAt = 3 + n

local present = {}
local conflicts = {}
for i = 1, n do
  local record = redis.call("HGETALL", KEYS[2 + i])
  if #record > 0 then
    local holder = redis.call("HGET", KEYS[2 + i], "token")
    if token ~= "" and holder ~= token then
      conflicts[#conflicts + 1] = i
      conflicts[#conflicts + 1] = record
    else
      present[#present + 1] = i
      present[#present + 1] = record
    end
  end
end
if #conflicts > 0 then
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
