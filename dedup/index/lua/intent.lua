-- Replace the intents of versions still being written, in one group: each only while it is
-- kept, so that a version another writer has taken back (its lease over) stays taken back.
-- Runs after common.lua.
-- KEYS[1]: the group's intents
-- ARGV[1]: the layout (common.lua)
-- ARGV[2], ARGV[3] ...: per version, its serial and its new intent, packed
-- Returns per version 1 when its intent was replaced, 0 when it was gone
local out = {}
for k = 1, (#ARGV - 1) / 2 do
  local serial, intent = ARGV[2 * k], ARGV[2 * k + 1]
  if redis.call('HEXISTS', KEYS[1], serial) == 1 then
    redis.call('HSET', KEYS[1], serial, intent)
    out[k] = 1
  else
    out[k] = 0
  end
end
return out
