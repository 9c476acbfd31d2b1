-- Announce the writes of new versions of documents of one group: for each document, take the
-- group's next position and keep the intent (the new record, its writer) under the new
-- serial, before any entry names it; then add the new serials to the entries of this same
-- group (on one server, where an index has one group, all of them). Nothing is written for a
-- document whose current version is the one announced (its id entry keeps the version's
-- digest after the serial) or, when the writer expects a given current version, is another.
-- Runs after common.lua.
-- KEYS[1]: the group's counters; KEYS[2]: the group's intents
-- KEYS[3] ... KEYS[2 + n]: the id entry's hash of each of the n documents
-- KEYS[3 + n] ...: per operation, the entry's hash
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: the group's number; ARGV[3]: the number of groups; ARGV[4]: n
-- ARGV[5] ... ARGV[4 + 4n]: per document, four values: the id entry's field; the serial of
--              the current version the writer expects, or -1 for whichever it is; the new
--              version's digest (dedup.index.layout.version_digest); the intent, packed
--              (dedup.index.layout.pack_intent)
-- ARGV[5 + 4n], ARGV[6 + 4n], ARGV[7 + 4n]: the operations as update.lua takes them (letters
--              and widths; holders from which an entry is boilerplate; fields), each field
--              followed by the number of its document (1 to n, packed as a serial)
-- Returns {the group's intents as they were (field, value, ...), per document two numbers:
-- the new serial (0: the current version is this one; -1: it is not the one expected; -2:
-- its id entry keeps no digest, so the writer must read its record and expect it), and the
-- serial of the current version (0: none), per operation update.lua's three values (for a
-- document not announced: 0, 0, '', nothing done)}
local group, groups, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local found = redis.call('HGETALL', KEYS[2])
local out, began = {}, {}
for k = 1, n do
  local a = 4 * k + 1
  local field, expect, digest, intent = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2], ARGV[a + 3]
  local value = redis.call('HGET', KEYS[k + 2], field)
  local now = 0
  if value then now = struct.unpack(SERIAL, value) end
  local serial = 'new'
  if expect >= 0 then
    if now ~= expect then serial = -1 end
  elseif value and #value == SERIAL_SIZE then
    serial = -2
  elseif value and string.sub(value, SERIAL_SIZE + 1) == digest then
    serial = 0
  end
  if serial == 'new' then
    serial = redis.call('HINCRBY', KEYS[1], 'serial', 1) * groups + group
    redis.call('HSET', KEYS[2], serial, intent)
    began[k] = serial
  end
  out[2 * k - 1] = serial
  out[2 * k] = now
end
local o = 4 * n + 5
local added, distinct = update_all(3 + n, ARGV[o], ARGV[o + 2], false, tonumber(ARGV[o + 1]),
  function(number) return began[number] end)
if distinct ~= 0 then redis.call('HINCRBY', KEYS[1], 'distinct_paragraphs', distinct) end
return {found, out, added}
