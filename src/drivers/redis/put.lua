--[[
put.lua: put-if-absent of one or more poison keys under one token, all or none, in one step.

KEYS[1]          the key index: a sorted set whose members are storage keys, every score 0
KEYS[2]          the audit stream
KEYS[3..2+n]     the record hashes, one per poison key, in the caller's order

ARGV[1]          the token (never empty)
ARGV[2]          "1": append one audit entry per key this call writes; "": no audit
ARGV[3..2+n]     the storage keys (the index members), same order as KEYS[3..]
ARGV[3+n]        m: the number of record field/value pairs that follow
ARGV[4+n..]      the record's field/value pairs (2m values: token, state, created_at, ...)
then             when ARGV[2] == "1": the audit entry's field/value pairs (at, action, ...)

Returns
  {1, held}       OK: every key is now held by the token. held[i] is the HGETALL of key i when
                  the token already held it (left untouched), or 0 when this call wrote it.
  {0, conflicts}  CONFLICT: some key is held by another token; nothing was written.
                  conflicts = {i, HGETALL, i, HGETALL, ...} for each such key i.
]]
local n = #KEYS - 2
local token = ARGV[1]
local audited = ARGV[2] == "1"
local m = tonumber(ARGV[3 + n])
local fieldsAt = 4 + n
local auditAt = fieldsAt + 2 * m

local held = {}
local conflicts = {}
for i = 1, n do
  local holder = redis.call("HGET", KEYS[2 + i], "token")
  if holder == false and redis.call("EXISTS", KEYS[2 + i]) == 0 then
    held[i] = 0
  elseif holder == token then
    held[i] = redis.call("HGETALL", KEYS[2 + i])
  else
    -- Another token, or a hash without a token (written by hand): never overwrite it.
    conflicts[#conflicts + 1] = i
    conflicts[#conflicts + 1] = redis.call("HGETALL", KEYS[2 + i])
  end
end
if #conflicts > 0 then
  return {0, conflicts}
end

local fields = {}
for j = fieldsAt, auditAt - 1 do
  fields[#fields + 1] = ARGV[j]
end
for i = 1, n do
  if held[i] == 0 then
    redis.call("HSET", KEYS[2 + i], unpack(fields))
    redis.call("ZADD", KEYS[1], 0, ARGV[2 + i])
    if audited then
      local entry = {"key", ARGV[2 + i]}
      for j = auditAt, #ARGV do
        entry[#entry + 1] = ARGV[j]
      end
      for j = 1, #fields, 2 do
        entry[#entry + 1] = "r:" .. fields[j]
        entry[#entry + 1] = fields[j + 1]
      end
      redis.call("XADD", KEYS[2], "*", unpack(entry))
    end
  end
end
return {1, held}
