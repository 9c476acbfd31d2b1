-- Shared by dedup's scripts, which run after it: index entries as dedup/index/layout.py lays
-- them out. An entry is a field of a small hash whose value is the serials holding it, packed
-- one after the other, or '' once they moved to a set of their own: the key that follows the
-- hash in KEYS. Every key a script touches comes in KEYS, all in one hash slot (one group);
-- ARGV[1] of every script is the layout (dedup.index.scripts.layout_argument): the packing of
-- serials and the inline limit. No key name and no constant of the layout is written here.
local L = cjson.decode(ARGV[1])
local SERIAL, SERIAL_SIZE = L.serial.format, L.serial.size

-- The serials of a set, packed as inline entries hold them.
local function packed_members(set)
  local out = {}
  for k, m in ipairs(redis.call('SMEMBERS', set)) do out[k] = struct.pack(SERIAL, tonumber(m)) end
  return table.concat(out)
end

-- The serials an entry holds, packed ('' for none).
local function members(hash, set, field)
  local value = redis.call('HGET', hash, field)
  if not value then return '' end
  if value == '' then return packed_members(set) end
  return value
end

local function count(hash, set, field)
  local value = redis.call('HGET', hash, field)
  if not value then return 0 end
  if value == '' then return redis.call('SCARD', set) end
  return #value / SERIAL_SIZE
end

-- Add a serial to an entry; returns the number of serials after, whether it was new, and
-- with ``want`` the serials the entry held before, packed.
local function add(hash, set, field, serial, want)
  local value = redis.call('HGET', hash, field)
  local packed = struct.pack(SERIAL, serial)
  if not value then
    redis.call('HSET', hash, field, packed)
    return 1, true, ''
  end
  if value == '' then
    local before = ''
    if want then before = packed_members(set) end
    local new = redis.call('SADD', set, serial) == 1
    return redis.call('SCARD', set), new, before
  end
  for k = 1, #value, SERIAL_SIZE do
    if string.sub(value, k, k + SERIAL_SIZE - 1) == packed then
      return #value / SERIAL_SIZE, false, value
    end
  end
  if #value / SERIAL_SIZE >= L.inline then
    local all = {serial}
    for k = 1, #value, SERIAL_SIZE do all[#all + 1] = struct.unpack(SERIAL, value, k) end
    redis.call('SADD', set, unpack(all))
    redis.call('HSET', hash, field, '')
    return #all, true, value
  end
  redis.call('HSET', hash, field, value .. packed)
  return #value / SERIAL_SIZE + 1, true, value
end

-- Take a serial out of an entry; returns the number of serials after, and whether it was there.
local function remove(hash, set, field, serial)
  local value = redis.call('HGET', hash, field)
  if not value then return 0, false end
  if value == '' then
    local gone = redis.call('SREM', set, serial) == 1
    local left = redis.call('SCARD', set)
    if left == 0 then redis.call('HDEL', hash, field) end
    return left, gone
  end
  local packed = struct.pack(SERIAL, serial)
  for k = 1, #value, SERIAL_SIZE do
    if string.sub(value, k, k + SERIAL_SIZE - 1) == packed then
      local rest = string.sub(value, 1, k - 1) .. string.sub(value, k + SERIAL_SIZE)
      if rest == '' then
        redis.call('HDEL', hash, field)
      else
        redis.call('HSET', hash, field, rest)
      end
      return #rest / SERIAL_SIZE, true
    end
  end
  return #value / SERIAL_SIZE, false
end

-- The serial an id entry names (0 when none).
local function current(hash, field)
  local value = redis.call('HGET', hash, field)
  if not value then return 0 end
  return struct.unpack(SERIAL, value)
end
