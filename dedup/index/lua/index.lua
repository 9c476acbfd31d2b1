-- Index (or delete) one document atomically: take out what an older version of it put in
-- the index, add the new entries, find its duplicates among the documents sharing an LSH
-- band or its exact content, and raise the flags on both sides. Runs after common.lua.
-- Each version of a document has its own serial, so entries are sets: writing a document
-- twice ends in the same state. The serial is taken by the first write of the script and the
-- record written last: a script stopped half-way by an error leaves the old version
-- recorded, and the retry redoes everything under a new serial.
-- KEYS: none (the layout names the key prefixes and the counters and flag keys).
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: the serial of the version to replace, as the store read it (0: none)
-- ARGV[3]: the new record ('' to delete the document)
-- ARGV[4]: flags the new version carries of itself, by name, separated by spaces
-- ARGV[5]: signature values kept whole, those the LSH bands read (``wide``)
-- ARGV[6]: the document's id entry, followed by its id
-- ARGV[7], ARGV[8], ARGV[9]: the new version's band, paragraph and content entries
-- ARGV[10], ARGV[11], ARGV[12]: the old version's (computed from the record the store read)
-- ARGV[13], ARGV[14]: the new and the old version's near-copy piece entries ('' for none)
-- Returns {'ok', exact copies' ids, near duplicates' ids and scores (flat), affected serials,
-- new serial (0 after a delete)}, or {'conflict'} when the document's version is not
-- ARGV[2]. The affected serials (whose flags may have changed: the store refreshes them)
-- are also kept next to the new record until the store has done so (dedup/index/layout.py).
local expect = tonumber(ARGV[2])
local record = ARGV[3]
local delete = record == ''
local wide = tonumber(ARGV[5])
local old_serial, old_rec, id_key, id_field = resolve(ARGV[6])
if old_serial ~= expect then
  return {'conflict'}
end

local affected, noted = {}, {}
local function note(serials)
  for _, s in ipairs(serials) do
    if s ~= old_serial and not noted[s] then
      noted[s] = true
      affected[#affected + 1] = s
    end
  end
end

local serial = 0
if not delete then
  serial = redis.call('HINCRBY', L.counters, 'serial', 1)
end

-- Changes to the running totals, written together at the end.
local documents, paragraphs, distinct = 0, 0, 0
local function count_up()
  if documents ~= 0 then redis.call('HINCRBY', L.counters, 'documents', documents) end
  if paragraphs ~= 0 then redis.call('HINCRBY', L.counters, 'paragraphs', paragraphs) end
  if distinct ~= 0 then redis.call('HINCRBY', L.counters, 'distinct_paragraphs', distinct) end
end

if old_serial ~= 0 then
  -- A refresh the old version still owes (its writer died before it) is owed by this write.
  local owed = refresh_owed(old_serial)
  if owed then
    note(unpack_serials(owed))
    redis.call('HDEL', record_key(old_serial), old_serial .. L.refresh)
  end
  for _, e in ipairs(entries(ARGV[10], L.bands)) do
    remove(e[1], e[2], old_serial)
    note(members(e[1], e[2]))
  end
  for _, e in ipairs(entries(ARGV[11], L.paras)) do
    local left, gone = remove(e[1], e[2], old_serial)
    if gone then
      if left == 0 then
        distinct = distinct - 1
      elseif left == L.boilerplate_at - 1 then
        note(members(e[1], e[2]))
      end
    end
  end
  for _, e in ipairs(entries(ARGV[12], L.contents)) do
    remove(e[1], e[2], old_serial)
    note(members(e[1], e[2]))
  end
  -- A piece held by many documents makes its paragraph boilerplate, as a paragraph entry does.
  for _, e in ipairs(entries(ARGV[14], L.pieces)) do
    local left, gone = remove(e[1], e[2], old_serial)
    if gone and left == L.boilerplate_at - 1 then note(members(e[1], e[2])) end
  end
  for _, key in pairs(L.flags) do redis.call('SETBIT', key, old_serial, 0) end
  remove(id_key, id_field, old_serial)
  redis.call('HDEL', record_key(old_serial), old_serial)
  documents = documents - 1
  paragraphs = paragraphs - record_header(old_rec).paragraphs
end

if delete then
  count_up()
  return {'ok', {}, {}, affected, 0}
end

local sharing = {}  -- for each band, the versions that held it before this one
for _, e in ipairs(entries(ARGV[7], L.bands)) do
  local _, _, before = add(e[1], e[2], serial, true)
  sharing[#sharing + 1] = before
end
-- A paragraph (or a near-copy piece) held by one more document: at boilerplate_at holders
-- it just became boilerplate and every document holding it carries the flag; past it, this
-- document does.
local function held(e, size)
  if size == L.boilerplate_at then
    for _, s in ipairs(members(e[1], e[2])) do redis.call('SETBIT', L.flags.boilerplate, s, 1) end
  elseif size > L.boilerplate_at then
    redis.call('SETBIT', L.flags.boilerplate, serial, 1)
  end
end
for _, e in ipairs(entries(ARGV[8], L.paras)) do
  local size, new = add(e[1], e[2], serial, false)
  if new then
    if size == 1 then distinct = distinct + 1 end
    held(e, size)
  end
end
for _, e in ipairs(entries(ARGV[13], L.pieces)) do
  local size, new = add(e[1], e[2], serial, false)
  if new then held(e, size) end
end
for name in string.gmatch(ARGV[4], '%S+') do redis.call('SETBIT', L.flags[name], serial, 1) end

local copies = {}
for _, e in ipairs(entries(ARGV[9], L.contents)) do
  local _, _, before = add(e[1], e[2], serial, true)
  copies[#copies + 1] = before
end
local seen = {}
local exact = {}
for _, other in ipairs(related(copies, serial, seen, L.max_exact)) do
  exact[#exact + 1] = record_id(other[2])
  redis.call('SETBIT', L.flags.exact_duplicate, other[1], 1)
end
if #exact > 0 then redis.call('SETBIT', L.flags.exact_duplicate, serial, 1) end

-- Near duplicates: candidates from the bands, scored on the stored signatures, flagged on
-- both sides at or over the threshold.
local near = {}
local sig = record_signature(record)
if #sig > 0 then
  for _, other in ipairs(related(sharing, serial, seen, L.max_candidates)) do
    local theirs = record_signature(other[2])
    if #theirs == #sig then
      local score = similarity(sig, theirs, wide)
      if score >= L.near_threshold then
        near[#near + 1] = record_id(other[2])
        near[#near + 1] = tostring(score)
        redis.call('SETBIT', L.flags.near_duplicate, other[1], 1)
      end
    end
  end
  if #near > 0 then redis.call('SETBIT', L.flags.near_duplicate, serial, 1) end
end
documents = documents + 1
paragraphs = paragraphs + record_header(record).paragraphs
count_up()
add(id_key, id_field, serial, false)
if #affected > 0 then
  local packed = {}
  for k, s in ipairs(affected) do packed[k] = struct.pack(SERIAL, s) end
  redis.call('HSET', record_key(serial), serial .. L.refresh, table.concat(packed))
end
redis.call('HSET', record_key(serial), serial, record)
return {'ok', exact, near, affected, serial}
