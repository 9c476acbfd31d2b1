-- How many documents hold each of these entries, and which. Read-only. Runs after common.lua.
-- KEYS: per entry, its hash and its overflow set (one group)
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: one letter per entry: 'c' the count, 'm' the count and the serials, 'b' the count,
--          and the serials when fewer than ARGV[3] hold it, 'e' the count, and the serials
--          when exactly ARGV[3] hold it
-- ARGV[3]: the limit of 'b' and 'e'
-- ARGV[4], ARGV[5] ...: the field of each entry
-- Returns {count, serials packed ('' when not asked)} per entry, flat
local limit = tonumber(ARGV[3])
local out = {}
for k = 1, #ARGV[2] do
  local mode = string.sub(ARGV[2], k, k)
  local hash, set, field = KEYS[2 * k - 1], KEYS[2 * k], ARGV[3 + k]
  local n = count(hash, set, field)
  local held = ''
  if mode == 'm' or (mode == 'b' and n > 0 and n < limit) or (mode == 'e' and n == limit) then
    held = members(hash, set, field)
  end
  out[#out + 1] = n
  out[#out + 1] = held
end
return out
