--[[
audit.lua: one page of audit entries, newest first, filtered by storage key or prefix.

KEYS[1]          the audit stream

ARGV[1]          XREVRANGE end: "+" for the newest, or "(" .. the id of the previous page's last
ARGV[2]          the page size
ARGV[3]          only entries whose storage key starts with this prefix (the namespace)
ARGV[4]          only entries for exactly this storage key, or "" for every key under ARGV[3]

Returns {id, {field, value, ...}, id, {field, value, ...}, ...}, newest first.

The stream holds every namespace under one key prefix, so the scan reads past entries of other
namespaces in batches; its cost grows with those (audit entries are rare: manual actions only).
]]
local limit = tonumber(ARGV[2])
local prefix = ARGV[3]
local exact = ARGV[4]
local cursor = ARGV[1]
local out = {}
local found = 0
while found < limit do
  local batch = redis.call("XREVRANGE", KEYS[1], cursor, "-", "COUNT", 256)
  for _, entry in ipairs(batch) do
    local id, fields = entry[1], entry[2]
    local key = nil
    for j = 1, #fields, 2 do
      if fields[j] == "key" then
        key = fields[j + 1]
        break
      end
    end
    if key ~= nil and ((exact ~= "" and key == exact) or (exact == "" and string.sub(key, 1, #prefix) == prefix)) then
      out[#out + 1] = id
      out[#out + 1] = fields
      found = found + 1
      if found >= limit then
        break
      end
    end
  end
  if #batch < 256 then
    break
  end
  cursor = "(" .. batch[#batch][1]
end
return out
