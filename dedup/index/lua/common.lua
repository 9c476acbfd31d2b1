-- Shared by dedup's scripts, which run after it: index entries as dedup/index/layout.py lays
-- them out. An entry is a field of a small hash whose value is the serials holding it, packed
-- one after the other, or '' once they moved to a set of their own, the entry's overflow set.
-- Every key a script touches comes in KEYS, all in one hash slot (one shard). The overflow
-- sets are only sent for the entries that need one: the functions below answer nil, having
-- changed nothing, when the set is needed and not given (nil). ARGV[1] of every script is the
-- layout (dedup.index.scripts.layout_argument): the packing of serials, its size, the
-- inline limit, the most holders of an entry read, the most answered to a write adding
-- itself, and the fields per entry hash past which a shard's hashes split. No key name and
-- no constant of the layout is written here.
local SERIAL, SERIAL_SIZE, INLINE, SAMPLE, SEEING, LOAD =
  string.match(ARGV[1], '^(%S+) (%d+) (%d+) (%d+) (%d+) (%d+)$')
SERIAL_SIZE, INLINE = tonumber(SERIAL_SIZE), tonumber(INLINE)
SAMPLE, SEEING, LOAD = tonumber(SAMPLE), tonumber(SEEING), tonumber(LOAD)

-- The depths of a shard's families (dedup.index.splits.Depth), kept in its counters as
-- '<letter>.depth' and '<letter>.split' (one HMGET for all): as the writer named the call's
-- keys by them ('letter:depth:split', space apart; dedup.index.depths), nil and the hashes
-- of each family (its buckets); else the depths found, in the same form, and the call must
-- change nothing.
local function check_depths(counters, spec)
  local letters, wanted, asked = {}, {}, {}
  for letter, depth, split in string.gmatch(spec, '(%a):(%d+):(%d+)') do
    letters[#letters + 1] = letter
    wanted[#wanted + 1] = {tonumber(depth), tonumber(split)}
    asked[#asked + 1] = letter .. '.depth'
    asked[#asked + 1] = letter .. '.split'
  end
  local buckets, found, stale = {}, {}, false
  if #asked == 0 then return nil, buckets end
  local got = redis.call('HMGET', counters, unpack(asked))
  for k, letter in ipairs(letters) do
    local d, s = tonumber(got[2 * k - 1] or '0'), tonumber(got[2 * k] or '0')
    if d ~= wanted[k][1] or s ~= wanted[k][2] then stale = true end
    found[k] = letter .. ':' .. d .. ':' .. s
    buckets[letter] = 2 ^ d + s
  end
  if stale then return table.concat(found, ' '), buckets end
  return nil, buckets
end

-- Count the fields a call made or took out per family ('<letter>.fields' in the shard's
-- counters); answers, for the families whose hashes (``buckets``, as check_depths found
-- them) now hold more than LOAD fields each on average, 'letter:fields', space apart (''
-- when none): the writer splits them.
local function count_fields(counters, added, buckets)
  local grown = {}
  for letter, change in pairs(added) do
    if change ~= 0 then
      local fields = redis.call('HINCRBY', counters, letter .. '.fields', change)
      if fields > LOAD * buckets[letter] then grown[#grown + 1] = letter .. ':' .. fields end
    end
  end
  return table.concat(grown, ' ')
end
local MAX_SERIAL = 2 ^ (8 * SERIAL_SIZE) - 1

-- The serials of a set, packed as inline entries hold them: all of them up to ``most``
-- (SAMPLE by default), else the first ``most`` one scan step finds (the same ones while the
-- set does not change), so that reading an entry costs the same whatever the copies that
-- hold it.
local function packed_members(set, most)
  most = most or SAMPLE
  local found
  if redis.call('SCARD', set) <= most then
    found = redis.call('SMEMBERS', set)
  else
    found = redis.call('SSCAN', set, 0, 'COUNT', most)[2]
  end
  -- packed in one call: a call per serial cost most of a report of a page copied widely
  local n = math.min(#found, most)
  return struct.pack(string.rep(SERIAL, n), unpack(found, 1, n))
end

-- An entry whose serials moved to its overflow set keeps, in its field, the first holders
-- it had (INLINE of them, in the order they came, less those taken out since) followed by
-- OVERFLOW: a length no packing of serials has. Indexes made before keep '' there. The first
-- holders are the earliest indexed, which a reader ranking copies by age looks for.
local OVERFLOW = '+'
local function in_set(value)
  return value == '' or #value % SERIAL_SIZE ~= 0
end
local function first_holders(value)
  return string.sub(value, 1, #value - #value % SERIAL_SIZE)
end

-- The serials an entry holds, packed ('' for none; nil when its set is needed): of one in
-- its set, its first holders then those of the set read (some of them twice).
local function members(hash, set, field)
  local value = redis.call('HGET', hash, field)
  if not value then return '' end
  if in_set(value) then
    if not set then return nil end
    return first_holders(value) .. packed_members(set)
  end
  return value
end

-- How many serials an entry holds (nil when its set is needed).
local function count(hash, set, field)
  local value = redis.call('HGET', hash, field)
  if not value then return 0 end
  if in_set(value) then
    if not set then return nil end
    return redis.call('SCARD', set)
  end
  return #value / SERIAL_SIZE
end

-- Add a serial to an entry; returns the number of serials after, whether it was new, and
-- with ``want`` the serials the entry held before, packed (at most SEEING of them once the
-- entry has its set; nil when its set is needed).
local function add(hash, set, field, serial, want, tried)
  local packed = struct.pack(SERIAL, serial)
  -- most entries are new (a band or paragraph of one document): one lookup of the hash
  -- (``tried``: the caller's HSETNX found the entry there already)
  if not tried and redis.call('HSETNX', hash, field, packed) == 1 then return 1, true, '' end
  local value = redis.call('HGET', hash, field)
  if in_set(value) then
    if not set then return nil end
    local before = ''
    if want then before = packed_members(set, SEEING) end
    local new = redis.call('SADD', set, serial) == 1
    return redis.call('SCARD', set), new, before
  end
  for k = 1, #value, SERIAL_SIZE do
    if string.sub(value, k, k + SERIAL_SIZE - 1) == packed then
      return #value / SERIAL_SIZE, false, value
    end
  end
  if #value / SERIAL_SIZE >= INLINE then
    if not set then return nil end
    local all = {serial}
    for k = 1, #value, SERIAL_SIZE do all[#all + 1] = struct.unpack(SERIAL, value, k) end
    redis.call('SADD', set, unpack(all))
    redis.call('HSET', hash, field, value .. OVERFLOW)
    return #all, true, value
  end
  redis.call('HSET', hash, field, value .. packed)
  return #value / SERIAL_SIZE + 1, true, value
end

-- Take a serial out of an entry; returns the number of serials after, and whether it was
-- there (nil when its set is needed).
local function remove(hash, set, field, serial)
  local value = redis.call('HGET', hash, field)
  if not value then return 0, false end
  local packed = struct.pack(SERIAL, serial)
  if in_set(value) then
    if not set then return nil end
    local gone = redis.call('SREM', set, serial) == 1
    local left = redis.call('SCARD', set)
    if left == 0 then
      redis.call('HDEL', hash, field)
    elseif gone then
      -- a first holder taken out leaves the field (the others stay, in their order)
      local first = first_holders(value)
      for k = 1, #first, SERIAL_SIZE do
        if string.sub(first, k, k + SERIAL_SIZE - 1) == packed then
          local rest = string.sub(first, 1, k - 1) .. string.sub(first, k + SERIAL_SIZE)
          redis.call('HSET', hash, field, rest .. OVERFLOW)
          break
        end
      end
    end
    return left, gone
  end
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

-- One operation of update.lua (and of begin.lua on its own shard's entries) on an entry:
-- 'a' add; 'A' add, answering the serials held before; 'p' add a paragraph, answering the
-- serials it holds when it reaches ``boilerplate_at`` holders; 'q' add a near-copy piece,
-- likewise; 'r' take out; 'x' take out a paragraph. A removal answers the holders left when
-- fewer than ``boilerplate_at`` are (whether or not it changed the entry, so that one run
-- again after a crash answers the same): theirs are the flags it may have moved, and so few
-- are read whatever the copies of the entry. Returns the holders after (nil, nothing done,
-- when the entry's set is needed), whether it changed, the serials to answer ('' when none)
-- the change of the shard's count of distinct paragraphs, and the change of its fields (1 for
-- an entry made, -1 for one taken out).
local function update(op, hash, set, field, serial, boilerplate_at, tried)
  local size, changed, held, distinct, fields = nil, false, '', 0, 0
  if op == 'r' or op == 'x' then
    size, changed = remove(hash, set, field, serial)
    if changed and size == 0 then fields = -1 end
    if op == 'x' and changed and size == 0 then distinct = -1 end
    if size and size > 0 and size < boilerplate_at then held = members(hash, set, field) or '' end
  else
    local before
    size, changed, before = add(hash, set, field, serial, op == 'A', tried)
    if size and op == 'A' then held = before end
    if size and (op == 'p' or op == 'q') and changed and size == boilerplate_at then
      held = members(hash, set, field) or ''
    end
    if changed and size == 1 then fields = 1 end
    if op == 'p' and changed and size == 1 then distinct = 1 end
  end
  return size, changed, held, distinct, fields
end

-- The serial an id entry names (0 when none).
local function current(hash, field)
  local value = redis.call('HGET', hash, field)
  if not value then return 0 end
  return struct.unpack(SERIAL, value)
end

-- The operations of entries.lua and update.lua: KEYS[first] on are, per operation, the
-- entry's hash, followed by its overflow set when ``sets``; ``ops`` holds per operation its
-- letter, its family's letter and one digit (the field's width in bytes); ``packed`` the
-- fields one after the other, each followed by a serial when ``serials``. Calls ``apply(k,
-- op, hash, set, field, serial, family)`` for each operation in order, which answers false
-- when it needs the set; every later operation on that entry is held back too
-- (``hold(k)``), so that all are sent again with the set in the order they came.
local function each_operation(first, ops, packed, sets, serials, apply, hold)
  -- a bulk call runs a few hundred operations: the library functions are looked up once
  local sub, byte, unpack_at = string.sub, string.byte, struct.unpack
  local step = sets and 2 or 1
  local at, key, held, any = 1, first, {}, false
  for k = 1, #ops / 3 do
    local c = 3 * k
    local op, family = sub(ops, c - 2, c - 2), sub(ops, c - 1, c - 1)
    local to = at + byte(ops, c) - 48  -- the digit: the field's width
    local field = sub(packed, at, to - 1)
    at = to
    local serial = 0
    if serials then
      serial = unpack_at(SERIAL, packed, at)
      at = at + SERIAL_SIZE
    end
    local hash = KEYS[key]
    local set = sets and KEYS[key + 1] or nil
    key = key + step
    if any and held[hash .. '\0' .. field] then
      hold(k)
    elseif not apply(k, op, hash, set, field, serial, family) then
      held[hash .. '\0' .. field], any = true, true
    end
  end
end

-- The operations of update.lua, or those begin.lua adds to its own shard's entries: each
-- operation's number after its field is a serial, or what ``serial_of`` makes one of (nil:
-- nothing to do, answered 0, 0, ''). Returns update.lua's answers, the change of the shard's
-- count of distinct paragraphs, and per family letter the change of its fields. The answers
-- are {marks, rest}: per operation one letter, 'n' for an entry it made (1 holder, changed,
-- no serials: most of a write's), else '+' and its three values in ``rest``, in order.
local function update_all(first, ops, packed, sets, boilerplate_at, serial_of)
  local marks, rest, distinct, fields = {}, {}, 0, {}
  local function answer(k, size, changed, held)
    if size == 1 and changed == 1 and held == '' then
      marks[k] = 'n'
    else
      marks[k] = '+'
      local at = #rest
      rest[at + 1], rest[at + 2], rest[at + 3] = size, changed, held
    end
  end
  -- The common case first: an entry made by its first holder answers 'n' (whatever the
  -- letter, but a paragraph or piece when one holder already makes it boilerplate), after one
  -- HSETNX and no other call; each serial is packed once.
  local fast, serials = boilerplate_at > 1, {}
  each_operation(first, ops, packed, sets, true, function(k, op, hash, set, field, number, family)
    local serial = serial_of(number)
    if not serial then
      answer(k, 0, 0, '')
      return true
    end
    local tried = false
    if fast and op ~= 'r' and op ~= 'x' then
      local bytes = serials[serial]
      if not bytes then
        bytes = struct.pack(SERIAL, serial)
        serials[serial] = bytes
      end
      if redis.call('HSETNX', hash, field, bytes) == 1 then
        marks[k] = 'n'
        if op == 'p' then distinct = distinct + 1 end
        fields[family] = (fields[family] or 0) + 1
        return true
      end
      tried = true
    end
    local size, changed, held, more, made = update(op, hash, set, field, serial, boilerplate_at, tried)
    answer(k, size or -1, changed and 1 or 0, held)
    distinct = distinct + more
    fields[family] = (fields[family] or 0) + made
    return size ~= nil
  end, function(k)
    answer(k, -1, 0, '')
  end)
  return {table.concat(marks), rest}, distinct, fields
end
