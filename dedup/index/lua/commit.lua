-- Make new versions of documents of one shard the current ones (or delete documents): for
-- each, the id entry, the records, the flag bits and the counters change together. Every
-- entry of a new version was added before; the old version's are taken out after, as the
-- owed intent kept here says. Runs after common.lua.
-- KEYS[1]: the shard's counters; KEYS[2]: the shard's intents
-- KEYS[3] ... KEYS[2 + #ARGV[2]]: the shard's flag bitmaps, in the order of the flags below
-- (a new version keeps the bits other writers raised on it while it was written, flags.lua)
-- then per document: the id entry's hash, the record hash of the new version (of the old one
-- for a delete), and the record hash of the old version (any key of the shard when none)
-- then per flag raised on another version of the shard: that version's record hash
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: one character per flag bitmap (its count); ARGV[3]: the number of documents;
-- ARGV[4]: the depths the id entries' keys were named by (common.lua's check_depths)
-- then per document, 12 values: the id entry's field; the old version's serial as read (0:
-- none) and its position; the new version's serial (0: delete) and its position; the new
-- record ('' to delete); one '0' or '1' per flag bitmap, the flags of the new version; the
-- change of the shard's documents and of its paragraphs; the owed intent, packed ('' when
-- nothing is owed), and the serial it is kept under; the new version's digest, which the id
-- entry keeps after its serial
-- then per flag raised on another version of the shard by a document committed here, four
-- values: the document's number (from 1), the version's serial, its position, and the
-- flag's number among the bitmaps; raised as flags.lua does, when the document's commit is
-- 'ok' (a version being written takes the bit too, which its commit keeps)
-- Returns {per document 'ok', 'conflict' when its current version is another, or 'lost' when
-- its new version's intent is gone (taken back by another writer); the families grown past
-- their hashes (common.lua's count_fields)}; {'stale', depths found} when the depths were
-- others (nothing done)
local stale, buckets = check_depths(KEYS[1], ARGV[4])
if stale then return {'stale', stale}, false end
local flags = #ARGV[2]
local documents, paragraphs, ids = 0, 0, 0
local function commit(id, kept, was, field, old, old_at, new, new_at, record, bits, owed, owed_at,
                      digest)
  if new ~= 0 and redis.call('HEXISTS', KEYS[2], new) == 0 then return 'lost' end
  if current(id, field) ~= old then return 'conflict' end
  if old ~= 0 then
    redis.call('HDEL', was, old)
    redis.call('HDEL', KEYS[2], old)  -- what the old version still owed is in the new intent
    for f = 1, flags do redis.call('SETBIT', KEYS[2 + f], old_at, 0) end
  end
  if new ~= 0 then
    if old == 0 then ids = ids + 1 end
    redis.call('HSET', id, field, struct.pack(SERIAL, new) .. digest)
    redis.call('HSET', kept, new, record)
    redis.call('HDEL', KEYS[2], new)
    for f = 1, flags do
      if string.sub(bits, f, f) == '1' then redis.call('SETBIT', KEYS[2 + f], new_at, 1) end
    end
  else
    ids = ids - redis.call('HDEL', id, field)
  end
  if owed ~= '' then redis.call('HSET', KEYS[2], owed_at, owed) end
  return 'ok'
end
local out, n = {}, tonumber(ARGV[3])
for k = 1, n do
  local a, key = 4 + 12 * (k - 1), 2 + flags + 3 * (k - 1)
  local done = commit(
    KEYS[key + 1], KEYS[key + 2], KEYS[key + 3], ARGV[a + 1], tonumber(ARGV[a + 2]),
    tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), ARGV[a + 6],
    ARGV[a + 7], ARGV[a + 10], ARGV[a + 11], ARGV[a + 12]
  )
  if done == 'ok' then
    documents = documents + tonumber(ARGV[a + 8])
    paragraphs = paragraphs + tonumber(ARGV[a + 9])
  end
  out[k] = done
end
local key = 2 + flags + 3 * n
for a = 5 + 12 * n, #ARGV, 4 do
  key = key + 1
  local serial, position = ARGV[a + 1], tonumber(ARGV[a + 2])
  if out[tonumber(ARGV[a])] == 'ok' and (redis.call('HEXISTS', KEYS[key], serial) == 1
      or redis.call('HEXISTS', KEYS[2], serial) == 1) then
    redis.call('SETBIT', KEYS[2 + tonumber(ARGV[a + 3])], position, 1)
  end
end
if documents ~= 0 then redis.call('HINCRBY', KEYS[1], 'documents', documents) end
if paragraphs ~= 0 then redis.call('HINCRBY', KEYS[1], 'paragraphs', paragraphs) end
local letter = string.match(ARGV[4], '^(%a)')  -- the id entries' family
return {out, count_fields(KEYS[1], {[letter] = ids}, buckets)}
