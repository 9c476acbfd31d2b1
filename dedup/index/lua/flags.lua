-- Set or clear flag bits of versions of one group. A version with a record takes the bit; a
-- version still being written (its intent kept, no record yet) keeps the flags raised on it
-- for its commit to set, so that of two near duplicates written at the same moment the one
-- that commits last is flagged too; a version deleted or taken back keeps nothing. Runs after
-- common.lua.
-- KEYS[1]: the group's intents; KEYS[2]: the flags raised on the group's versions being written
-- KEYS[3], KEYS[4] ...: per operation, the record hash of the version and the flag bitmap
-- ARGV[1]: the layout (common.lua)
-- ARGV[2] ...: per operation, four values: the serial, its position, the bit (0 or 1), and the
--              flag's number (its bitmap's place among commit.lua's, from 1)
-- Returns how many operations found their version
local done = 0
for k = 1, (#KEYS - 2) / 2 do
  local a = 4 * k - 2
  local serial, position, bit, flag = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), ARGV[a + 3]
  if redis.call('HEXISTS', KEYS[2 * k + 1], serial) == 1 then
    redis.call('SETBIT', KEYS[2 * k + 2], position, bit)
    done = done + 1
  elseif bit == 1 and redis.call('HEXISTS', KEYS[1], serial) == 1 then
    local raised = redis.call('HGET', KEYS[2], serial) or ''
    if not string.find(raised, flag, 1, true) then
      redis.call('HSET', KEYS[2], serial, raised .. flag)
    end
    done = done + 1
  end
end
return done
