--[[
prelude.lua: what several scripts share, prepended to each of them when the driver loads them
(redis.ts), so that it is written once. It defines only locals; each script's own header says
what its KEYS, ARGV and reply are.

CHANGES_MAXLEN   the change stream (store.watch) keeps about this many entries: XADD MAXLEN ~.
                 changes.lua relies on it (a stream shorter than this was never trimmed).
COLUMNS          the record's hash fields, in the order in which update.lua answers records (the
                 HMGET of these fields: values only, false/nil for a field not stored). redis.ts
                 reads those records by this position: keep both lists in the same order.
                 put.lua and remove.lua answer records as field/value pairs instead (HGETALL:
                 one command reads the record and tells an absent key apart), which redis.ts
                 reads by name.
]]
local CHANGES_MAXLEN = 10000
local COLUMNS = {"token", "state", "created_at", "updated_at", "heartbeat_at",
  "heartbeat_interval_ms", "operation", "owner", "error", "data"}

-- The record stored at `key` (COLUMNS order), or nil when the key does not exist (update.lua):
-- HMGET first, and EXISTS only when it found none of our fields (absent, or a hash written by
-- hand, which is still present: never taken for absent).
local function read_present(key)
  local record = redis.call("HMGET", key, unpack(COLUMNS))
  for j = 1, #COLUMNS do
    if record[j] then
      return record
    end
  end
  if redis.call("EXISTS", key) == 0 then
    return nil
  end
  return record
end

-- The value of field `name` in field/value pairs (an HGETALL reply), or false.
local function field(pairs, name)
  for j = 1, #pairs, 2 do
    if pairs[j] == name then
      return pairs[j + 1]
    end
  end
  return false
end

-- Whether `name` is one of COLUMNS.
local function is_column(name)
  for j = 1, #COLUMNS do
    if COLUMNS[j] == name then
      return true
    end
  end
  return false
end

-- Field/value pairs (an HGETALL reply) without the fields that are not record columns (a hash
-- written by hand may have any), so that they can be spread into a stream entry next to its own
-- fields ("k", "t", "at"). The pairs themselves when every field is a column (the usual case:
-- no table is built).
local function column_pairs(pairs)
  for j = 1, #pairs, 2 do
    if not is_column(pairs[j]) then
      local out = {}
      for k = 1, #pairs, 2 do
        if is_column(pairs[k]) then
          out[#out + 1] = pairs[k]
          out[#out + 1] = pairs[k + 1]
        end
      end
      return out
    end
  end
  return pairs
end

-- A record (COLUMNS order) as field/value pairs, fields not stored left out.
local function record_pairs(record)
  local out = {}
  for j = 1, #COLUMNS do
    if record[j] then
      out[#out + 1] = COLUMNS[j]
      out[#out + 1] = record[j]
    end
  end
  return out
end

-- Append one audit entry for the storage key `key` to the stream `stream`: "key", then the
-- audit intent's field/value pairs ARGV[from..#ARGV] (at, action, actor, reason, ...), then the
-- record's field/value pairs `fields`, each name prefixed "r:" (the record written or removed).
local function append_audit(stream, key, from, fields)
  local entry = {"key", key}
  for j = from, #ARGV do
    entry[#entry + 1] = ARGV[j]
  end
  for j = 1, #fields, 2 do
    entry[#entry + 1] = "r:" .. fields[j]
    entry[#entry + 1] = fields[j + 1]
  end
  redis.call("XADD", stream, "*", unpack(entry))
end

-- Append one change to the change stream `stream` (store.watch reads it): "k" the storage key,
-- "t" the change type (put, poisoned, touched, deleted, force-deleted), "at" when the caller
-- knows the time (`at`, or nil), then the record after the change (or removed) as its field/value
-- pairs. Trimmed to about CHANGES_MAXLEN entries; a watch that falls further behind resyncs.
local function append_change(stream, key, type, at, fields)
  -- The pairs are spread as the last argument (unpack): no entry table is built.
  if at then
    redis.call("XADD", stream, "MAXLEN", "~", CHANGES_MAXLEN, "*", "k", key, "t", type, "at", at,
      unpack(fields))
  else
    redis.call("XADD", stream, "MAXLEN", "~", CHANGES_MAXLEN, "*", "k", key, "t", type,
      unpack(fields))
  end
end

