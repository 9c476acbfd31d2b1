-- Split the next buckets of one family's entry hashes in one shard, each in two, in order
-- (linear hashing: dedup.index.splits.Depth): every field moves to the child its next bit
-- names, without that bit, and the parent goes; the shard's depth for the family moves on.
-- Nothing happens when the depth is not the one given (another writer split these buckets):
-- sent twice, it runs once. Runs after common.lua.
-- KEYS[1]: the shard's counters
-- KEYS[2], KEYS[3], KEYS[4] ...: per bucket to split, the bucket and its two children
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: the family's letter; ARGV[3], ARGV[4]: the depth and split the first bucket is next
-- at; ARGV[5] ...: per bucket, the bits of its fields
-- Returns the family's depth after, 'letter:depth:split' (dedup.index.depths)
local letter, depth, split = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local got = redis.call('HMGET', KEYS[1], letter .. '.depth', letter .. '.split')
local d, s = tonumber(got[1] or '0'), tonumber(got[2] or '0')
if d ~= depth or s ~= split then return letter .. ':' .. d .. ':' .. s end

-- HSET or HDEL of many fields (``items``), at most 100 fields a command.
local function in_batches(command, key, items, step)
  for at = 1, #items, step do
    redis.call(command, key, unpack(items, at, math.min(at + step - 1, #items)))
  end
end

-- A field holds ``bits`` bits, big-endian, in as few bytes as hold them; the top one names
-- the child, and the rest fill one byte fewer when they fit.
local function split_one(parent, low, high, bits)
  local width = math.floor((bits + 7) / 8)
  local top = bits - 8 * (width - 1) - 1  -- the top bit's place in the first byte
  local mask = 2 ^ top
  local found = redis.call('HGETALL', parent)
  if #found == 0 then return end
  -- The fields of the low child keep their bytes (but where the top bit is the first
  -- byte's last): a parent in Redis's compact encoding becomes the low child (a rename)
  -- once the high child's fields are out of it, so only those are written again. One past
  -- it (a bucket that fell far behind) is made anew, so that its children are compact again.
  if top > 0 and redis.call('OBJECT', 'ENCODING', parent) ~= 'hashtable' then
    local gone, moved = {}, {}
    for i = 1, #found, 2 do
      local field = found[i]
      local first = string.byte(field, 1)
      if first >= mask then
        gone[#gone + 1] = field
        moved[#moved + 1] = string.char(first - mask, string.byte(field, 2, -1))
        moved[#moved + 1] = found[i + 1]
      end
    end
    in_batches('HSET', high, moved, 200)
    if 2 * #gone == #found then
      redis.call('UNLINK', parent)
      return
    end
    in_batches('HDEL', parent, gone, 100)
    if redis.call('RENAMENX', parent, low) == 1 then return end
    -- the low child is there already (it never is when every split went as planned): its
    -- fields are kept, and the parent's left added to them
    found = redis.call('HGETALL', parent)
    in_batches('HSET', low, found, 200)
    redis.call('UNLINK', parent)
    return
  end
  local moved = {{}, {}}
  for i = 1, #found, 2 do
    local field = found[i]
    local first = string.byte(field, 1)
    local into = moved[1]
    if first >= mask then into, first = moved[2], first - mask end
    if top == 0 then
      field = string.sub(field, 2)
    elseif into == moved[2] then
      field = string.char(first, string.byte(field, 2, -1))
    end
    into[#into + 1] = field
    into[#into + 1] = found[i + 1]
  end
  in_batches('HSET', low, moved[1], 200)
  in_batches('HSET', high, moved[2], 200)
  redis.call('UNLINK', parent)
end

for k = 1, (#KEYS - 1) / 3 do
  split_one(KEYS[3 * k - 1], KEYS[3 * k], KEYS[3 * k + 1], tonumber(ARGV[4 + k]))
  s = s + 1
  if s == 2 ^ d then d, s = d + 1, 0 end
end
redis.call('HSET', KEYS[1], letter .. '.depth', d, letter .. '.split', s)
return letter .. ':' .. d .. ':' .. s
