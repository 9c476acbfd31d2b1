-- Set or clear flag bits of versions that still have a record, in one group: a version
-- deleted in the meantime keeps no stray bit. Runs after common.lua.
-- KEYS: per operation, the record hash of the version and the flag bitmap
-- ARGV[1]: the layout (common.lua)
-- ARGV[2], ARGV[3], ARGV[4] ...: serial, position and bit (0 or 1) of each operation
-- Returns how many operations found their version
local done = 0
for k = 1, #KEYS / 2 do
  local serial, position, bit = ARGV[3 * k - 1], tonumber(ARGV[3 * k]), tonumber(ARGV[3 * k + 1])
  if redis.call('HEXISTS', KEYS[2 * k - 1], serial) == 1 then
    redis.call('SETBIT', KEYS[2 * k], position, bit)
    done = done + 1
  end
end
return done
