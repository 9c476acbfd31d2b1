-- Announce the writes of new versions of documents of one group: for each document whose
-- current version is still the one read, take the group's next position and keep the intent
-- (the new record, its writer) under the new serial, before any entry names it. Runs after
-- common.lua.
-- KEYS[1]: the group's counters; KEYS[2]: the group's intents
-- KEYS[3], KEYS[4] ...: the id entry's hash of each document
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: the group's number; ARGV[3]: the number of groups
-- ARGV[4], ARGV[5], ARGV[6] ...: per document, the id entry's field, the serial of the
--                               current version as read (0: none) and the intent, packed
--                               (dedup.index.layout.pack_intent)
-- Returns per document its new serial, or 0 when its current version is another
local group, groups = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for k = 1, #KEYS - 2 do
  local field, expect, intent = ARGV[3 * k + 1], tonumber(ARGV[3 * k + 2]), ARGV[3 * k + 3]
  if current(KEYS[k + 2], field) ~= expect then
    out[k] = 0
  else
    local serial = redis.call('HINCRBY', KEYS[1], 'serial', 1) * groups + group
    redis.call('HSET', KEYS[2], serial, intent)
    out[k] = serial
  end
end
return out
