-- Announce the writes of new versions of documents of one shard: for each document, take the
-- shard's next position and keep the intent (the new record, its writer) under the new
-- serial, before any entry names it; then add the new serials to the entries of this same
-- shard (on one server, where an index has one shard, all of them). Nothing is written for a
-- document whose current version is the one announced (its id entry keeps the version's
-- digest after the serial): another writer wrote it since peek.lua read it.
-- Runs after common.lua.
-- KEYS[1]: the shard's counters; KEYS[2]: the shard's intents
-- KEYS[3] ... KEYS[2 + n]: the id entry's hash of each of the n documents
-- KEYS[3 + n] ...: per operation, the entry's hash
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: the shard's number; ARGV[3]: the number of shards; ARGV[4]: n
-- ARGV[5] ... ARGV[4 + 3n]: per document, three values: the id entry's field; the new
--              version's digest (dedup.index.layout.version_digest); the intent, packed
--              (dedup.index.records.pack_intent)
-- ARGV[5 + 3n], ARGV[6 + 3n], ARGV[7 + 3n]: the operations as update.lua takes them (letters
--              and widths; holders from which an entry is boilerplate; fields), each field
--              followed by the number of its document (1 to n, packed as a serial)
-- ARGV[8 + 3n]: the depths the entries' keys were named by (common.lua's check_depths)
-- Returns {per document two numbers: the new serial (0: the current version is this one)
-- and the serial of the current version (0: none), update.lua's answers of the operations
-- (for a document not announced: 0, 0, '', nothing done), the families grown past their
-- hashes (common.lua's count_fields)}, and whether anything was written; {'stale', depths
-- found} when the depths were others (nothing done)
local shard, shards, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local o = 3 * n + 5
local stale, buckets = check_depths(KEYS[1], ARGV[o + 3])
if stale then return {'stale', stale}, false end
local out, began, announced = {}, {}, 0
for k = 1, n do
  local a = 3 * k + 2
  local field, digest, intent = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local value = redis.call('HGET', KEYS[k + 2], field)
  local now = 0
  if value then now = struct.unpack(SERIAL, value) end
  local serial = 'new'
  if value and string.sub(value, SERIAL_SIZE + 1) == digest then serial = 0 end
  if serial == 'new' then
    -- the next position, unless its serial would not fit in the packing (never wrapped)
    local position = tonumber(redis.call('HGET', KEYS[1], 'serial') or '0') + 1
    serial = position * shards + shard
    if serial > MAX_SERIAL then
      return redis.error_reply('dedup: shard ' .. shard .. ' of the index has used every ' ..
        'serial; build a new index with more shards (the index_shards setting)')
    end
    redis.call('HSET', KEYS[1], 'serial', position)
    redis.call('HSET', KEYS[2], serial, intent)
    began[k] = serial
    announced = announced + 1
  end
  out[2 * k - 1] = serial
  out[2 * k] = now
end
local added, distinct, fields = update_all(3 + n, ARGV[o], ARGV[o + 2], false,
  tonumber(ARGV[o + 1]), function(number) return began[number] end)
if distinct ~= 0 then redis.call('HINCRBY', KEYS[1], 'distinct_paragraphs', distinct) end
return {out, added, count_fields(KEYS[1], fields, buckets)}, announced > 0
