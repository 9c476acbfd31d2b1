-- Announce the write of a document's new version in its group: unless the document's current
-- version is no longer the one read, take the group's next position and keep the intent
-- (the new record, its writer) under the new serial, before any entry names it. Runs after
-- common.lua.
-- KEYS[1]: the id entry's hash; KEYS[2]: the group's counters; KEYS[3]: the group's intents
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: the id entry's field
-- ARGV[3]: the serial of the current version as read (0: none)
-- ARGV[4]: the group's number; ARGV[5]: the number of groups
-- ARGV[6]: the intent, packed (dedup.index.layout.pack_intent)
-- Returns {'ok', new serial}, or {'conflict'} when the current version is another
if current(KEYS[1], ARGV[2]) ~= tonumber(ARGV[3]) then return {'conflict'} end
local position = redis.call('HINCRBY', KEYS[2], 'serial', 1)
local serial = position * tonumber(ARGV[5]) + tonumber(ARGV[4])
redis.call('HSET', KEYS[3], serial, ARGV[6])
return {'ok', serial}
