-- How many documents hold each of these entries, and which. Read-only. Runs after common.lua.
-- KEYS[1]: the shard's counters (its depths)
-- KEYS[2] ...: per entry, its hash, followed by its overflow set when ARGV[5] is '1'
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: per entry a letter, its family's letter and one digit (the field's width): 'c'
--          the count, 'm' the count and the serials, 'b' the count, and the serials when
--          fewer than ARGV[3] hold it, 'e' the count, and the serials when exactly ARGV[3]
--          hold it
-- ARGV[3]: the limit of 'b' and 'e'
-- ARGV[4]: the fields, one after the other
-- ARGV[5]: '1' when the overflow sets are given, else '0'
-- ARGV[6]: the depths the keys were named by (common.lua's check_depths)
-- Returns {count, serials packed ('' when not asked)} per entry, flat; the count is -1 for an
-- entry whose overflow set is needed and not given. {'stale', depths found} when the depths
-- were others.
local stale = check_depths(KEYS[1], ARGV[6])
if stale then return {'stale', stale} end
local limit = tonumber(ARGV[3])
local out = {}
each_operation(2, ARGV[2], ARGV[4], ARGV[5] == '1', false, function(k, mode, hash, set, field)
  local n = count(hash, set, field)
  local held = ''
  if n and (mode == 'm' or (mode == 'b' and n > 0 and n < limit) or (mode == 'e' and n == limit)) then
    held = members(hash, set, field)
  end
  out[2 * k - 1] = n or -1
  out[2 * k] = held
  return n ~= nil
end, function(k)
  out[2 * k - 1] = -1
  out[2 * k] = ''
end)
return out
