--[[
update.lua: token-checked update of present poison keys, all or none, in one step.
Runs after prelude.lua (prepended when loaded), which defines read_present, record_pairs,
append_change and COLUMNS.

KEYS[1]          the change stream (store.watch)
KEYS[2..1+n]     the record hashes, in the caller's order

ARGV[1]          the token that must hold every key
ARGV[2]          the record-hash key prefix (hash key = ARGV[2] .. storage key)
ARGV[3..]        field/value pairs to set on every record (updated_at, state, error, ...)

Returns (code 1 = OK; code 0 = REFUSED: POISON_CONFLICT for another holder, POISON_NOT_FOUND
for a missing key, as the runtime decides)
  {1, records}             OK: records[i] = the record of key i after the update.
  {0, conflicts, missing}  REFUSED: nothing changed. conflicts = {i, record, ...} for keys held
                           by another token; missing = {i, ...} for absent keys.
A record is the HMGET of COLUMNS (prelude.lua), in that order. Each key updated gets a change
stream entry with the record after the update: "poisoned" when its state became poisoned,
"touched" otherwise.
]]
local token = ARGV[1]
local conflicts = {}
local missing = {}
local n = #KEYS - 1
local states = {}
for i = 1, n do
  local record = read_present(KEYS[1 + i])
  if not record then
    missing[#missing + 1] = i
  elseif record[1] ~= token then
    conflicts[#conflicts + 1] = i
    conflicts[#conflicts + 1] = record
  else
    states[i] = record[2]
  end
end
if #conflicts > 0 or #missing > 0 then
  return {0, conflicts, missing}
end

local fields = {unpack(ARGV, 3)}
local records = {}
for i = 1, n do
  redis.call("HSET", KEYS[1 + i], unpack(fields))
  local record = redis.call("HMGET", KEYS[1 + i], unpack(COLUMNS))
  records[i] = record
  local kind = "touched"
  if record[2] == "poisoned" and states[i] ~= "poisoned" then
    kind = "poisoned"
  end
  -- The storage key is the hash key without the record prefix, which the driver passes.
  append_change(KEYS[1], string.sub(KEYS[1 + i], #ARGV[2] + 1), kind, nil, record_pairs(record))
end
return {1, records}
