-- Read what a batch's write starts from in one shard, changing nothing: the current version
-- of each document (its id entry: the serial, and whether the version to write is that one
-- already, by the digest kept after the serial), and the shard's intents that the writer
-- must finish or take back before it announces anything. Runs after common.lua.
-- KEYS[1]: the shard's counters (its depths); KEYS[2]: the shard's intents
-- KEYS[3] ... KEYS[2 + n]: the id entry's hash of each of the n documents
-- ARGV[1]: the layout (common.lua)
-- ARGV[2] ... ARGV[1 + 2n]: per document, the id entry's field and the new version's digest
--              (dedup.index.layout.version_digest)
-- ARGV[2 + 2n]: the writer's token, JSON-encoded as an intent's head holds it ('': answer
--              no intents, a writer's later call in the same shard and round trip);
-- ARGV[3 + 2n]: the time before which an intent's lease is over; ARGV[4 + 2n]: the kind of
--              an owed intent (dedup.index.records.OWED); ARGV[5 + 2n]: the depths the id
--              entries' keys were named by (common.lua's check_depths)
-- Returns {per document the serial of its current version (0: none) and 1 when the version
-- to write is that one, else 0; the intents the writer must handle (field, value, ...: its
-- own, those whose lease is over, what the current versions of these documents owe, and
-- any it cannot read; the other writers' intents in flight are not answered)}; {'stale',
-- depths found} when the depths were others
local n = #KEYS - 2
local o = 2 * n + 2
local stale = check_depths(KEYS[1], ARGV[o + 3])
if stale then return {'stale', stale} end
local out, current = {}, {}
for k = 1, n do
  local value = redis.call('HGET', KEYS[k + 2], ARGV[2 * k])
  local serial, same = 0, 0
  if value then
    serial = struct.unpack(SERIAL, value)
    if string.sub(value, SERIAL_SIZE + 1) == ARGV[2 * k + 1] then same = 1 end
  end
  current[serial] = true
  out[2 * k - 1], out[2 * k] = serial, same
end
local kept = {}
if ARGV[o] == '' then return {out, kept} end
-- An intent is packed (dedup.index.records.pack_intent) as two 4-byte lengths, then a JSON
-- head that starts {"kind":K,"token":T,"at":A,...; one that reads otherwise is answered.
local mine, cutoff, owed = ARGV[o] .. ',', tonumber(ARGV[o + 1]), ARGV[o + 2]
local function wanted(field, value)
  local kind, token = string.match(value, '^{"kind":"(%a+)","token":()', 9)
  if not kind then return true end
  if kind == owed and current[tonumber(field)] then return true end
  if string.sub(value, token, token + #mine - 1) == mine then return true end
  -- no '"' in a JSON string but escaped: the first ,"at": past the token is the field's
  local at = tonumber(string.match(value, ',"at":([%d%.eE+-]+)', token))
  return at == nil or at < cutoff
end
local found = redis.call('HGETALL', KEYS[2])
for i = 1, #found, 2 do
  if wanted(found[i], found[i + 1]) then
    kept[#kept + 1] = found[i]
    kept[#kept + 1] = found[i + 1]
  end
end
return {out, kept}
