-- Announce the writes of new versions of documents of one group: for each document, take the
-- group's next position and keep the intent (the new record, its writer) under the new
-- serial, before any entry names it. Nothing is written for a document whose current version
-- is the one announced (its id entry keeps the version's digest after the serial) or, when
-- the writer expects a given current version, is another. Runs after common.lua.
-- KEYS[1]: the group's counters; KEYS[2]: the group's intents
-- KEYS[3], KEYS[4] ...: the id entry's hash of each document
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: the group's number; ARGV[3]: the number of groups
-- ARGV[4] ...: per document, four values: the id entry's field; the serial of the current
--              version the writer expects, or -1 for whichever it is; the new version's
--              digest (dedup.index.layout.version_digest); the intent, packed
--              (dedup.index.layout.pack_intent)
-- Returns {the group's intents as they were (field, value, ...), per document two numbers:
-- the new serial (0: the current version is this one; -1: it is not the one expected; -2:
-- its id entry keeps no digest, so the writer must read its record and expect it), and the
-- serial of the current version (0: none)}
local group, groups = tonumber(ARGV[2]), tonumber(ARGV[3])
local found = redis.call('HGETALL', KEYS[2])
local out = {}
for k = 1, #KEYS - 2 do
  local a = 4 * k
  local field, expect, digest, intent = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2], ARGV[a + 3]
  local value = redis.call('HGET', KEYS[k + 2], field)
  local now = 0
  if value then now = struct.unpack(SERIAL, value) end
  local serial = 'new'
  if expect >= 0 then
    if now ~= expect then serial = -1 end
  elseif value and #value == SERIAL_SIZE then
    serial = -2
  elseif value and string.sub(value, SERIAL_SIZE + 1) == digest then
    serial = 0
  end
  if serial == 'new' then
    serial = redis.call('HINCRBY', KEYS[1], 'serial', 1) * groups + group
    redis.call('HSET', KEYS[2], serial, intent)
  end
  out[2 * k - 1] = serial
  out[2 * k] = now
end
return {found, out}
