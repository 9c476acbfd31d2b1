-- Make a document's new version the current one (or delete the document), in its group: the
-- id entry, the records, the flag bits and the counters change together. Every entry of the
-- new version was added before; the old version's are taken out after, as the owed intent
-- kept here says. Runs after common.lua.
-- KEYS[1]: the id entry's hash; KEYS[2]: the group's counters; KEYS[3]: the group's intents
-- KEYS[4]: the record hash of the new version (of the old one for a delete)
-- KEYS[5]: the record hash of the old version (any key of the group when there is none)
-- KEYS[6] ...: the group's flag bitmaps, in the order of ARGV[6]
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: the id entry's field
-- ARGV[3]: the old version's serial as read (0: none); ARGV[4]: its position
-- ARGV[5]: the new version's serial (0: delete); ARGV[6]: its position
-- ARGV[7]: the new record ('' to delete)
-- ARGV[8]: one '0' or '1' per flag bitmap: the flags of the new version
-- ARGV[9], ARGV[10]: change of the group's documents and paragraphs
-- ARGV[11]: the owed intent, packed ('' when nothing is owed); ARGV[12]: the serial it is kept under
-- Returns {'ok'}, {'conflict'} when the current version is another, or {'lost'} when the new
-- version's intent is gone (taken back by another writer)
local old, new = tonumber(ARGV[3]), tonumber(ARGV[5])
if new ~= 0 and redis.call('HEXISTS', KEYS[3], new) == 0 then return {'lost'} end
if current(KEYS[1], ARGV[2]) ~= old then return {'conflict'} end
if old ~= 0 then
  redis.call('HDEL', KEYS[5], old)
  redis.call('HDEL', KEYS[3], old)  -- what the old version still owed is in the new intent
  for k = 1, #ARGV[8] do redis.call('SETBIT', KEYS[5 + k], tonumber(ARGV[4]), 0) end
end
if new ~= 0 then
  redis.call('HSET', KEYS[1], ARGV[2], struct.pack(SERIAL, new))
  redis.call('HSET', KEYS[4], new, ARGV[7])
  redis.call('HDEL', KEYS[3], new)
  for k = 1, #ARGV[8] do
    if string.sub(ARGV[8], k, k) == '1' then redis.call('SETBIT', KEYS[5 + k], tonumber(ARGV[6]), 1) end
  end
else
  redis.call('HDEL', KEYS[1], ARGV[2])
end
if tonumber(ARGV[9]) ~= 0 then redis.call('HINCRBY', KEYS[2], 'documents', ARGV[9]) end
if tonumber(ARGV[10]) ~= 0 then redis.call('HINCRBY', KEYS[2], 'paragraphs', ARGV[10]) end
if ARGV[11] ~= '' then redis.call('HSET', KEYS[3], ARGV[12], ARGV[11]) end
return {'ok'}
