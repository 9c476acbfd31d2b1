-- Shared by dedup's scripts, which run after it: records and index entries as
-- dedup/index/layout.py lays them out. A record is a packed string (header, id, URL,
-- signature, fingerprints, extra JSON) in the hash of its serial's bucket. An entry is a
-- field of a small hash whose value is the serials holding it, packed one after the other,
-- or '' once they moved to a set of their own.
-- ARGV[1] of every script is the layout (dedup.index.scripts.layout_argument): key prefixes, entry
-- widths, the record header, the packing of serials, the signature's bits, thresholds and
-- limits. Every constant of the layout comes from there; none is written here.
local L = cjson.decode(ARGV[1])
local HEADER = L.header
local SERIAL, SERIAL_SIZE = L.serial.format, L.serial.size
local BUCKET, BUCKET_SIZE = L.bucket.format, L.bucket.size

local function record_key(serial)
  return L.records .. math.floor(serial / L.records_per_bucket)
end

local function get_record(serial)
  return redis.call('HGET', record_key(serial), serial)
end

-- The serials whose flags the write of version ``serial`` may have changed and that are not
-- refreshed yet, packed (false when none are owed).
local function refresh_owed(serial)
  return redis.call('HGET', record_key(serial), serial .. L.refresh)
end

local function unpack_serials(packed)
  local out = {}
  for k = 1, #packed, SERIAL_SIZE do out[#out + 1] = struct.unpack(SERIAL, packed, k) end
  return out
end

-- The header fields of a record, by name (dedup.index.layout.HEADER_FIELDS).
local function record_header(rec)
  local values = {struct.unpack(HEADER.format, rec)}
  local h = {}
  for k, name in ipairs(HEADER.fields) do h[name] = values[k] end
  return h
end

local function record_id(rec)
  local h = record_header(rec)
  return string.sub(rec, HEADER.size + 1, HEADER.size + h.id_length)
end

local function record_signature(rec)
  local h = record_header(rec)
  local start = HEADER.size + h.id_length + h.url_length + 1
  return string.sub(rec, start, start + h.signature_length - 1)
end

local function overflow_key(key, field)
  return key .. ':' .. (field:gsub('.', function(c) return string.format('%02x', string.byte(c)) end))
end

local function members(key, field)
  local value = redis.call('HGET', key, field)
  if not value then return {} end
  if value == '' then
    local out = {}
    for _, m in ipairs(redis.call('SMEMBERS', overflow_key(key, field))) do
      out[#out + 1] = tonumber(m)
    end
    return out
  end
  return unpack_serials(value)
end

local function count(key, field)
  local value = redis.call('HGET', key, field)
  if not value then return 0 end
  if value == '' then return redis.call('SCARD', overflow_key(key, field)) end
  return #value / SERIAL_SIZE
end

-- Add a serial to an entry; returns the number of serials after, whether it was new, and
-- with ``want`` the serials the entry held before (so the caller need not read it again).
local function add(key, field, serial, want)
  local value = redis.call('HGET', key, field)
  local packed = struct.pack(SERIAL, serial)
  local before = {}
  if not value then
    redis.call('HSET', key, field, packed)
    return 1, true, before
  end
  if value == '' then
    local set = overflow_key(key, field)
    if want then
      for _, m in ipairs(redis.call('SMEMBERS', set)) do before[#before + 1] = tonumber(m) end
    end
    local new = redis.call('SADD', set, serial) == 1
    return redis.call('SCARD', set), new, before
  end
  for k = 1, #value, SERIAL_SIZE do
    if string.sub(value, k, k + SERIAL_SIZE - 1) == packed then
      return #value / SERIAL_SIZE, false, before
    end
    if want then before[#before + 1] = struct.unpack(SERIAL, value, k) end
  end
  if #value / SERIAL_SIZE >= L.inline then
    local all = {serial}
    for _, s in ipairs(unpack_serials(value)) do all[#all + 1] = s end
    redis.call('SADD', overflow_key(key, field), unpack(all))
    redis.call('HSET', key, field, '')
    return #all, true, before
  end
  redis.call('HSET', key, field, value .. packed)
  return #value / SERIAL_SIZE + 1, true, before
end

-- Take a serial out of an entry; returns the number of serials after, and whether it was there.
local function remove(key, field, serial)
  local value = redis.call('HGET', key, field)
  if not value then return 0, false end
  if value == '' then
    local set = overflow_key(key, field)
    local gone = redis.call('SREM', set, serial) == 1
    local left = redis.call('SCARD', set)
    if left == 0 then redis.call('HDEL', key, field) end
    return left, gone
  end
  local packed = struct.pack(SERIAL, serial)
  for k = 1, #value, SERIAL_SIZE do
    if string.sub(value, k, k + SERIAL_SIZE - 1) == packed then
      local rest = string.sub(value, 1, k - 1) .. string.sub(value, k + SERIAL_SIZE)
      if rest == '' then
        redis.call('HDEL', key, field)
      else
        redis.call('HSET', key, field, rest)
      end
      return #rest / SERIAL_SIZE, true
    end
  end
  return #value / SERIAL_SIZE, false
end

-- Entries of one family packed by the store: a bucket number, then a field of the family's
-- width; ``family`` is one of the layout's ``ids``, ``bands``, ``paras``, ``contents``.
local function entries(blob, family)
  local out = {}
  for at = 1, #blob, BUCKET_SIZE + family.width do
    out[#out + 1] = {
      family.prefix .. struct.unpack(BUCKET, blob, at),
      string.sub(blob, at + BUCKET_SIZE, at + BUCKET_SIZE + family.width - 1)}
  end
  return out
end

-- The serials each of these entries holds, one list per entry.
local function holders(list)
  local out = {}
  for _, e in ipairs(list) do out[#out + 1] = members(e[1], e[2]) end
  return out
end

-- The versions other than ``serial`` in these lists of serials, each once, with their records
-- (versions without one are skipped), ``limit`` at most; ``seen`` carries over across calls.
local function related(lists, serial, seen, limit)
  local out = {}
  for _, list in ipairs(lists) do
    for _, s in ipairs(list) do
      if #out >= limit then return out end
      if s ~= serial and not seen[s] then
        seen[s] = true
        local rec = get_record(s)
        if rec then out[#out + 1] = {s, rec} end
      end
    end
  end
  return out
end

-- The serial and record of a document id (0, false when it is not indexed), from its id
-- entry followed by the id. The id entry is a hash of the id, so the record's own id decides.
local function resolve(id_blob)
  local entry = entries(string.sub(id_blob, 1, BUCKET_SIZE + L.ids.width), L.ids)[1]
  local key, field = entry[1], entry[2]
  local id = string.sub(id_blob, BUCKET_SIZE + L.ids.width + 1)
  for _, serial in ipairs(members(key, field)) do
    local rec = get_record(serial)
    if rec and record_id(rec) == id then return serial, rec, key, field end
  end
  return 0, false, key, field
end

-- Estimated Jaccard similarity of two reduced signatures, corrected for chance agreement:
-- ``L.signature.wide_bits`` kept of the first ``wide`` values, one to a byte,
-- ``L.signature.narrow_bits`` of the others, packed in the remaining bytes
-- (dedup.index.layout.similarity computes the same number).
local NARROW = 2 ^ L.signature.narrow_bits
local PER_BYTE = 8 / L.signature.narrow_bits
local function similarity(a, b, wide)
  local x = {string.byte(a, 1, -1)}
  local y = {string.byte(b, 1, -1)}
  local equal = 0
  for k = 1, wide do
    if x[k] == y[k] then equal = equal + 1 end
  end
  for k = wide + 1, #x do
    local u, v = x[k], y[k]
    for _ = 1, PER_BYTE do
      if u % NARROW == v % NARROW then equal = equal + 1 end
      u, v = math.floor(u / NARROW), math.floor(v / NARROW)
    end
  end
  local narrow = PER_BYTE * (#x - wide)
  local chance = wide / 2 ^ L.signature.wide_bits + narrow / NARROW
  local score = (equal - chance) / (wide + narrow - chance)
  if score < 0 then score = 0 end
  return score
end
