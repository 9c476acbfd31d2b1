-- Add serials to entries and take them out, in one group. Each operation is idempotent: a
-- serial is in an entry or not, so an operation sent again (a retry, a redirected cluster
-- pipeline) changes nothing. Runs after common.lua.
-- KEYS[1]: the group's counters (distinct paragraphs)
-- KEYS[2], KEYS[3] ...: per operation, the entry's hash and its overflow set
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: one letter per operation: 'a' add; 'A' add, answering the serials held before;
--          'p' add a paragraph (counted when it is new), answering the serials it holds when
--          it reaches ARGV[3] holders; 'q' add a near-copy piece, likewise but not counted;
--          'r' take out; 'x' take out a paragraph (counted when it is gone)
-- ARGV[3]: holders from which an entry is boilerplate
-- ARGV[4], ARGV[5] ...: field and serial of each operation
-- Returns {holders after, 1 when the operation changed the entry else 0, serials packed or ''}
-- per operation, flat
local boilerplate_at = tonumber(ARGV[3])
local distinct = 0
local out = {}
for k = 1, #ARGV[2] do
  local op = string.sub(ARGV[2], k, k)
  local hash, set = KEYS[2 * k], KEYS[2 * k + 1]
  local field, serial = ARGV[2 + 2 * k], tonumber(ARGV[3 + 2 * k])
  local size, changed, held = 0, false, ''
  if op == 'r' or op == 'x' then
    size, changed = remove(hash, set, field, serial)
    if op == 'x' and changed and size == 0 then distinct = distinct - 1 end
  else
    local before
    size, changed, before = add(hash, set, field, serial, op == 'A')
    if op == 'A' then held = before end
    if (op == 'p' or op == 'q') and changed and size == boilerplate_at then
      held = members(hash, set, field)
    end
    if op == 'p' and changed and size == 1 then distinct = distinct + 1 end
  end
  out[#out + 1] = size
  out[#out + 1] = changed and 1 or 0
  out[#out + 1] = held
end
if distinct ~= 0 then redis.call('HINCRBY', KEYS[1], 'distinct_paragraphs', distinct) end
return out
