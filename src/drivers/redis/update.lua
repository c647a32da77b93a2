--[[
update.lua: token-checked update of present poison keys, all or none, in one step.
Runs after prelude.lua (prepended when loaded), which defines read_record, COLUMNS.

KEYS[1..n]       the record hashes, in the caller's order

ARGV[1]          the token that must hold every key
ARGV[2..]        field/value pairs to set on every record (updated_at, state, error, ...)

Returns (code 1 = OK; code 0 = REFUSED: POISON_CONFLICT for another holder, POISON_NOT_FOUND
for a missing key, as the runtime decides)
  {1, records}             OK: records[i] = the record of key i after the update.
  {0, conflicts, missing}  REFUSED: nothing changed. conflicts = {i, record, ...} for keys held
                           by another token; missing = {i, ...} for absent keys.
A record is the HMGET of COLUMNS (prelude.lua), in that order.
]]
local token = ARGV[1]
local conflicts = {}
local missing = {}
for i = 1, #KEYS do
  local record = read_record(KEYS[i])
  if not record then
    missing[#missing + 1] = i
  elseif record[1] ~= token then
    conflicts[#conflicts + 1] = i
    conflicts[#conflicts + 1] = record
  end
end
if #conflicts > 0 or #missing > 0 then
  return {0, conflicts, missing}
end

local fields = {unpack(ARGV, 2)}
local records = {}
for i = 1, #KEYS do
  redis.call("HSET", KEYS[i], unpack(fields))
  records[i] = redis.call("HMGET", KEYS[i], unpack(COLUMNS))
end
return {1, records}
