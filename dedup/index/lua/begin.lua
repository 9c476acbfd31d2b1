-- Announce the writes of new versions of documents of one group: for each document, take the
-- group's next position and keep the intent (the new record, its writer) under the new
-- serial, before any entry names it; then add the new serials to the entries of this same
-- group (on one server, where an index has one group, all of them). Nothing is written for a
-- document whose current version is the one announced (its id entry keeps the version's
-- digest after the serial).
-- Runs after common.lua.
-- KEYS[1]: the group's counters; KEYS[2]: the group's intents
-- KEYS[3] ... KEYS[2 + n]: the id entry's hash of each of the n documents
-- KEYS[3 + n] ...: per operation, the entry's hash
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: the group's number; ARGV[3]: the number of groups; ARGV[4]: n
-- ARGV[5] ... ARGV[4 + 3n]: per document, three values: the id entry's field; the new
--              version's digest (dedup.index.layout.version_digest); the intent, packed
--              (dedup.index.layout.pack_intent)
-- ARGV[5 + 3n], ARGV[6 + 3n], ARGV[7 + 3n]: the operations as update.lua takes them (letters
--              and widths; holders from which an entry is boilerplate; fields), each field
--              followed by the number of its document (1 to n, packed as a serial)
-- ARGV[8 + 3n]: the writer's token, JSON-encoded as an intent's head holds it; ARGV[9 + 3n]:
--              the time before which an intent's lease is over; ARGV[10 + 3n]: the kind of
--              an owed intent (dedup.index.layout.OWED). An empty token answers no intents
--              (a writer's later call in the same group: it has them from its first)
-- Returns {the group's intents as they were that the writer must finish or take back (field,
-- value, ...: its own, those whose lease is over, and what the current versions of these
-- documents owe; the other writers' intents in flight stay here), per document two numbers:
-- the new serial (0: the current version is this one) and the serial of the current version
-- (0: none), per operation update.lua's three values (for a
-- document not announced: 0, 0, '', nothing done)}, and whether anything was written
local group, groups, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local o = 3 * n + 5
local found = {}
if ARGV[o + 3] ~= '' then found = redis.call('HGETALL', KEYS[2]) end
local out, began, current, announced = {}, {}, {}, 0
for k = 1, n do
  local a = 3 * k + 2
  local field, digest, intent = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local value = redis.call('HGET', KEYS[k + 2], field)
  local now = 0
  if value then now = struct.unpack(SERIAL, value) end
  current[now] = true
  local serial = 'new'
  if value and string.sub(value, SERIAL_SIZE + 1) == digest then serial = 0 end
  if serial == 'new' then
    -- the next position, unless its serial would not fit in the packing (never wrapped)
    local position = tonumber(redis.call('HGET', KEYS[1], 'serial') or '0') + 1
    serial = position * groups + group
    if serial > MAX_SERIAL then
      return redis.error_reply('dedup: group ' .. group .. ' of the index has used every ' ..
        'serial; build a new index with more groups (the index_groups setting)')
    end
    redis.call('HSET', KEYS[1], 'serial', position)
    redis.call('HSET', KEYS[2], serial, intent)
    began[k] = serial
    announced = announced + 1
  end
  out[2 * k - 1] = serial
  out[2 * k] = now
end
-- An intent is packed (dedup.index.layout.pack_intent) as two 4-byte lengths, then a JSON
-- head that starts {"kind":K,"token":T,"at":A,...; one that reads otherwise is answered.
local mine, cutoff, owed = ARGV[o + 3] .. ',', tonumber(ARGV[o + 4]), ARGV[o + 5]
local function wanted(field, value)
  local kind, token = string.match(value, '^{"kind":"(%a+)","token":()', 9)
  if not kind then return true end
  if kind == owed and current[tonumber(field)] then return true end
  if string.sub(value, token, token + #mine - 1) == mine then return true end
  -- no '"' in a JSON string but escaped: the first ,"at": past the token is the field's
  local at = tonumber(string.match(value, ',"at":([%d%.eE+-]+)', token))
  return at == nil or at < cutoff
end
local kept = {}
for i = 1, #found, 2 do
  if wanted(found[i], found[i + 1]) then
    kept[#kept + 1] = found[i]
    kept[#kept + 1] = found[i + 1]
  end
end
local added, distinct = update_all(3 + n, ARGV[o], ARGV[o + 2], false, tonumber(ARGV[o + 1]),
  function(number) return began[number] end)
if distinct ~= 0 then redis.call('HINCRBY', KEYS[1], 'distinct_paragraphs', distinct) end
return {kept, out, added}, announced > 0
