--[[
changes.lua: store.watch's read of the change stream: where it stands, or the entries after a
position, with the check that nothing between that position and them was trimmed away.
Runs after prelude.lua (prepended when loaded), which defines CHANGES_MAXLEN. Reads only: it
never creates the stream.

KEYS[1]          the change stream

ARGV[1]          "" to subscribe from now; else the id of the last entry seen ("0-0": the stream
                 was empty or absent when the watch subscribed)
ARGV[2]          the most entries to return

Returns (code 1 = OK; code 2 = RESYNC, which the watch reports as `resync`)
  {1, position, entries}  OK. For ARGV[1] = "": position = the id of the newest entry ("0-0"
                          when there is none), entries empty. Otherwise entries = up to ARGV[2]
                          entries after ARGV[1] ({id, {field, value, ...}}, oldest first) and
                          position = the id of the last one returned (ARGV[1] when none).
  {2, position}           RESYNC: entries after ARGV[1] may be gone (trimmed, or the stream was
                          lost: a restart without persistence, a DEL); position = the id of the
                          newest entry ("0-0" when there is none).

Why the checks are enough: entries leave the stream only from its head (MAXLEN ~ trimming), so
if the entry ARGV[1] is still there, every later one is too. "0-0" names no entry: the stream had
none, and trimming never leaves fewer than CHANGES_MAXLEN entries, so a stream shorter than that
was never trimmed since. (A restart that emptied the stream is caught by the driver, which
compares the server's run_id with the one in its position.)
]]
local function newest()
  local last = redis.call("XREVRANGE", KEYS[1], "+", "-", "COUNT", 1)
  if #last == 0 then
    return "0-0"
  end
  return last[1][1]
end

local from = ARGV[1]
if from == "" then
  return {1, newest(), {}}
end
local intact
if from == "0-0" then
  intact = redis.call("XLEN", KEYS[1]) < CHANGES_MAXLEN
else
  intact = #redis.call("XRANGE", KEYS[1], from, from) == 1
end
if not intact then
  return {2, newest()}
end
local entries = redis.call("XRANGE", KEYS[1], "(" .. from, "+", "COUNT", tonumber(ARGV[2]))
local position = from
if #entries > 0 then
  position = entries[#entries][1]
end
return {1, position, entries}
