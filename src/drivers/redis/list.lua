--[[
list.lua: one page of records in storage-key (byte) order, read in one atomic step.

KEYS[1]          the key index (sorted set of storage keys, every score 0)

ARGV[1]          ZRANGEBYLEX min: "[" .. prefix, or "(" .. the last key of the previous page
ARGV[2]          ZRANGEBYLEX max: "(" .. the smallest string above every key with the prefix,
                 or "+" for no upper bound
ARGV[3]          the page size
ARGV[4]          the record-hash key prefix (record key = ARGV[4] .. storage key)

Returns {storage key, HGETALL, storage key, HGETALL, ...} in key order.

The record hashes are derived from the index rather than passed in KEYS (they are not known
before the range is read); they share the index's hash tag, so this stays on one cluster slot.
Reading them here, not in a second round trip, keeps a page consistent with the index.
]]
local members = redis.call("ZRANGEBYLEX", KEYS[1], ARGV[1], ARGV[2], "LIMIT", 0, tonumber(ARGV[3]))
local out = {}
for _, member in ipairs(members) do
  local record = redis.call("HGETALL", ARGV[4] .. member)
  if #record > 0 then
    out[#out + 1] = member
    out[#out + 1] = record
  end
end
return out
