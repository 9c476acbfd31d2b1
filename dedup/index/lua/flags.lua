-- Set or clear flag bits of versions of one shard. A version with a record takes the bit; a
-- version still being written (its intent kept, no record yet) takes a raised bit too, so
-- that of two near duplicates written at the same moment the one that commits last is
-- flagged as well (its position is its own: nothing else ever set it, and a version taken
-- back has its bits cleared with its intent, done.lua); a version deleted or taken back
-- takes nothing. Setting a bit to a value twice changes nothing. Runs after common.lua.
-- KEYS[1]: the shard's intents
-- KEYS[2], KEYS[3] ...: per operation, the record hash of the version and the flag bitmap
-- ARGV[1]: the layout (common.lua)
-- ARGV[2] ...: per operation, three values: the serial, its position, the bit (0 or 1)
-- Returns how many operations found their version
local done = 0
for k = 1, (#KEYS - 1) / 2 do
  local a = 3 * k - 1
  local serial, position, bit = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  if redis.call('HEXISTS', KEYS[2 * k], serial) == 1
    or (bit == 1 and redis.call('HEXISTS', KEYS[1], serial) == 1) then
    redis.call('SETBIT', KEYS[2 * k + 1], position, bit)
    done = done + 1
  end
end
return done
