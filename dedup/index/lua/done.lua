-- Drop the intents of one shard's versions once what they named is done, and clear the flag
-- bits of those taken back (never committed: flags.lua may have raised bits at their
-- positions while they were being written), in one step, so that no bit is raised on them
-- after. Runs after common.lua.
-- KEYS[1]: the shard's intents; KEYS[2] ...: the shard's flag bitmaps
-- ARGV[1]: the layout (common.lua)
-- ARGV[2] ...: per version, its serial and the position whose bits to clear (0: none, a
--              committed version keeps its bits)
-- Returns how many intents were dropped
local dropped = 0
for k = 2, #ARGV, 2 do
  dropped = dropped + redis.call('HDEL', KEYS[1], ARGV[k])
  local position = tonumber(ARGV[k + 1])
  if position ~= 0 then
    for f = 2, #KEYS do redis.call('SETBIT', KEYS[f], position, 0) end
  end
end
return dropped
