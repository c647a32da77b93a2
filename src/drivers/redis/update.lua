--[[
update.lua: token-checked update of present poison keys, all or none, in one step.

KEYS[1..n]       the record hashes, in the caller's order

ARGV[1]          the token that must hold every key
ARGV[2..]        field/value pairs to set on every record (updated_at, state, error, ...)

Returns
  {1, records}             OK: records[i] = HGETALL of key i after the update.
  {0, conflicts, missing}  REFUSED: nothing changed. conflicts = {i, HGETALL, ...} for keys held
                           by another token; missing = {i, ...} for absent keys.
]]
local token = ARGV[1]
local conflicts = {}
local missing = {}
for i = 1, #KEYS do
  local record = redis.call("HGETALL", KEYS[i])
  if #record == 0 then
    missing[#missing + 1] = i
  elseif redis.call("HGET", KEYS[i], "token") ~= token then
    conflicts[#conflicts + 1] = i
    conflicts[#conflicts + 1] = record
  end
end
if #conflicts > 0 or #missing > 0 then
  return {0, conflicts, missing}
end

local fields = {}
for j = 2, #ARGV do
  fields[#fields + 1] = ARGV[j]
end
local records = {}
for i = 1, #KEYS do
  redis.call("HSET", KEYS[i], unpack(fields))
  records[i] = redis.call("HGETALL", KEYS[i])
end
return {1, records}
