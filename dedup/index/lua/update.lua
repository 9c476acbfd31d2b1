-- Add serials to entries and take them out, in one shard. Each operation is idempotent: a
-- serial is in an entry or not, so an operation sent again (a retry, a redirected cluster
-- pipeline) changes nothing. Runs after common.lua.
-- KEYS[1]: the shard's counters (distinct paragraphs, fields, depths)
-- KEYS[2], KEYS[3] ...: per operation, the entry's hash, followed by its overflow set when
--                      ARGV[5] is '1'
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: per operation its letter, its family's letter and one digit (the field's width):
--          'a' add; 'A' add, answering the serials held before; 'p' add a paragraph (counted
--          when it is new), answering the serials it holds when it reaches ARGV[3] holders;
--          'q' add a near-copy piece, likewise but not counted; 'r' take out; 'x' take out a
--          paragraph (counted when it is gone); both answer the serials left when fewer
--          than ARGV[3]
-- ARGV[3]: holders from which an entry is boilerplate
-- ARGV[4]: field and serial of each operation, one after the other
-- ARGV[5]: '1' when the overflow sets are given, else '0'
-- ARGV[6]: the depths the keys were named by (common.lua's check_depths)
-- Returns {{holders after, 1 when the operation changed the entry else 0, serials packed or
-- ''} per operation (common.lua's update_all: a letter for each, and the three values of
-- those that did not make a new entry); the families grown past their hashes (common.lua's
-- count_fields)}; holders is -1 for an operation that needs the entry's overflow set and
-- was not given it (nothing done). {'stale', depths found} when the depths were others.
local stale, buckets = check_depths(KEYS[1], ARGV[6])
if stale then return {'stale', stale}, false end
local out, distinct, fields = update_all(2, ARGV[2], ARGV[4], ARGV[5] == '1',
  tonumber(ARGV[3]), function(serial) return serial end)
if distinct ~= 0 then redis.call('HINCRBY', KEYS[1], 'distinct_paragraphs', distinct) end
return {out, count_fields(KEYS[1], fields, buckets)}
