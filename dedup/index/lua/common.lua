-- Shared by dedup's scripts: records and index entries as dedup/index/layout.py lays them out.
-- A record is a packed string (header, id, URL, signature, fingerprints, extra JSON) in the
-- hash of its serial's bucket. An entry is a field of a small hash whose value is the
-- serials holding it, 4 bytes each, or '' once they moved to a set of their own.
local HEADER_FORMAT = '<BBI4dc8HHH'
local HEADER_SIZE = 28
local RECORDS_PER_BUCKET = 128

local function record_key(prefix, serial)
  return prefix .. math.floor(serial / RECORDS_PER_BUCKET)
end

local function get_record(prefix, serial)
  return redis.call('HGET', record_key(prefix, serial), serial)
end

-- The serials whose flags the write of version ``serial`` may have changed and that are not
-- refreshed yet, packed 4 bytes each (false when none are owed); ``suffix`` is
-- dedup.index.layout.REFRESH.
local function refresh_owed(prefix, serial, suffix)
  return redis.call('HGET', record_key(prefix, serial), serial .. suffix)
end

local function record_header(rec)
  local _, bits, paragraphs, added, content, n_id, n_url, n_sig =
    struct.unpack(HEADER_FORMAT, rec)
  return {bits = bits, paragraphs = paragraphs, added = added, content = content,
          n_id = n_id, n_url = n_url, n_sig = n_sig}
end

local function record_id(rec)
  local h = record_header(rec)
  return string.sub(rec, HEADER_SIZE + 1, HEADER_SIZE + h.n_id)
end

local function record_signature(rec)
  local h = record_header(rec)
  local start = HEADER_SIZE + h.n_id + h.n_url + 1
  return string.sub(rec, start, start + h.n_sig - 1)
end

local function overflow_key(key, field)
  return key .. ':' .. (field:gsub('.', function(c) return string.format('%02x', string.byte(c)) end))
end

local function members(key, field)
  local value = redis.call('HGET', key, field)
  local out = {}
  if not value then return out end
  if value == '' then
    for _, m in ipairs(redis.call('SMEMBERS', overflow_key(key, field))) do
      out[#out + 1] = tonumber(m)
    end
    return out
  end
  for k = 1, #value, 4 do out[#out + 1] = struct.unpack('<I4', value, k) end
  return out
end

local function count(key, field)
  local value = redis.call('HGET', key, field)
  if not value then return 0 end
  if value == '' then return redis.call('SCARD', overflow_key(key, field)) end
  return #value / 4
end

-- Add a serial to an entry; returns the number of serials after, whether it was new, and
-- with ``want`` the serials the entry held before (so the caller need not read it again).
local function add(key, field, serial, inline, want)
  local value = redis.call('HGET', key, field)
  local packed = struct.pack('<I4', serial)
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
  for k = 1, #value, 4 do
    if string.sub(value, k, k + 3) == packed then return #value / 4, false, before end
    if want then before[#before + 1] = struct.unpack('<I4', value, k) end
  end
  if #value / 4 >= inline then
    local all = {serial}
    for k = 1, #value, 4 do all[#all + 1] = struct.unpack('<I4', value, k) end
    redis.call('SADD', overflow_key(key, field), unpack(all))
    redis.call('HSET', key, field, '')
    return #all, true, before
  end
  redis.call('HSET', key, field, value .. packed)
  return #value / 4 + 1, true, before
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
  local packed = struct.pack('<I4', serial)
  for k = 1, #value, 4 do
    if string.sub(value, k, k + 3) == packed then
      local rest = string.sub(value, 1, k - 1) .. string.sub(value, k + 4)
      if rest == '' then
        redis.call('HDEL', key, field)
      else
        redis.call('HSET', key, field, rest)
      end
      return #rest / 4, true
    end
  end
  return #value / 4, false
end

-- Entries packed by the store: a 4-byte bucket number, then a field of ``width`` bytes.
local function entries(blob, width, prefix)
  local out = {}
  for at = 1, #blob, 4 + width do
    out[#out + 1] = {prefix .. struct.unpack('<I4', blob, at), string.sub(blob, at + 4, at + 3 + width)}
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
local function related(lists, records, serial, seen, limit)
  local out = {}
  for _, list in ipairs(lists) do
    for _, s in ipairs(list) do
      if #out >= limit then return out end
      if s ~= serial and not seen[s] then
        seen[s] = true
        local rec = get_record(records, s)
        if rec then out[#out + 1] = {s, rec} end
      end
    end
  end
  return out
end

-- The serial and record of a document id (0, false when it is not indexed). The id entry is
-- a hash of the id, so the record's own id decides.
local function resolve(id_blob, id_width, id_prefix, records)
  local key = id_prefix .. struct.unpack('<I4', id_blob, 1)
  local field = string.sub(id_blob, 5, 4 + id_width)
  local id = string.sub(id_blob, 5 + id_width)
  for _, serial in ipairs(members(key, field)) do
    local rec = get_record(records, serial)
    if rec and record_id(rec) == id then return serial, rec, key, field end
  end
  return 0, false, key, field
end

-- Estimated Jaccard similarity of two reduced signatures, corrected for chance agreement:
-- 8 bits kept of the first ``wide`` values, 4 bits (two to a byte) of the others
-- (dedup.index.layout.similarity computes the same number).
local function similarity(a, b, wide)
  local x = {string.byte(a, 1, -1)}
  local y = {string.byte(b, 1, -1)}
  local equal = 0
  for k = 1, wide do
    if x[k] == y[k] then equal = equal + 1 end
  end
  for k = wide + 1, #x do
    local u, v = x[k], y[k]
    if u % 16 == v % 16 then equal = equal + 1 end
    if math.floor(u / 16) == math.floor(v / 16) then equal = equal + 1 end
  end
  local narrow = 2 * (#x - wide)
  local chance = wide / 256 + narrow / 16
  local score = (equal - chance) / (wide + narrow - chance)
  if score < 0 then score = 0 end
  return score
end
