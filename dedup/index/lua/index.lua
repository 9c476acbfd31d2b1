-- Index (or delete) one document atomically: take out what an older version of it put in
-- the index, add the new entries, find its duplicates among the documents sharing an LSH
-- band or its exact content, and raise the flags on both sides. common.lua comes first.
-- ARGV[1]: JSON plan (scalars and key prefixes), ARGV[2]: the new record ('' to delete),
-- ARGV[3]: the id entry followed by the id, ARGV[4..6]: new band, paragraph and content
-- entries, ARGV[7..9]: the old ones (computed from the record the store read).
-- Each version of a document has its own serial, so entries are sets: writing a document
-- twice ends in the same state. The serial is taken by the first write of the script and the
-- record written last: a script stopped half-way by an error leaves the old version
-- recorded, and the retry redoes everything under a new serial.
-- Returns {'ok', exact ids, near ids and scores, affected serials, new serial} or
-- {'conflict'}. The affected serials (whose flags may have changed: the store refreshes them)
-- are also kept next to the new record until the store has done so (dedup/index/layout.py).
local p = cjson.decode(ARGV[1])
local record = ARGV[2]
local old_serial, old_rec, id_key, id_field = resolve(ARGV[3], p.id_width, p.ids, p.records)
if old_serial ~= p.expect then
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
if not p.delete then
  serial = redis.call('HINCRBY', p.counters, 'serial', 1)
end

-- Changes to the running totals, written together at the end.
local documents, paragraphs, distinct = 0, 0, 0
local function count_up()
  if documents ~= 0 then redis.call('HINCRBY', p.counters, 'documents', documents) end
  if paragraphs ~= 0 then redis.call('HINCRBY', p.counters, 'paragraphs', paragraphs) end
  if distinct ~= 0 then redis.call('HINCRBY', p.counters, 'distinct_paragraphs', distinct) end
end

if old_serial ~= 0 then
  -- A refresh the old version still owes (its writer died before it) is owed by this write.
  local owed = refresh_owed(p.records, old_serial, p.refresh)
  if owed then
    local serials = {}
    for k = 1, #owed, 4 do serials[#serials + 1] = struct.unpack('<I4', owed, k) end
    note(serials)
    redis.call('HDEL', record_key(p.records, old_serial), old_serial .. p.refresh)
  end
  for _, e in ipairs(entries(ARGV[7], p.band_width, p.bands)) do
    remove(e[1], e[2], old_serial)
    note(members(e[1], e[2]))
  end
  for _, e in ipairs(entries(ARGV[8], p.para_width, p.paras)) do
    local left, gone = remove(e[1], e[2], old_serial)
    if gone then
      if left == 0 then
        distinct = distinct - 1
      elseif left == p.boilerplate_at - 1 then
        note(members(e[1], e[2]))
      end
    end
  end
  for _, e in ipairs(entries(ARGV[9], p.content_width, p.contents)) do
    remove(e[1], e[2], old_serial)
    note(members(e[1], e[2]))
  end
  for _, key in ipairs(p.all_flags) do redis.call('SETBIT', key, old_serial, 0) end
  remove(id_key, id_field, old_serial)
  redis.call('HDEL', record_key(p.records, old_serial), old_serial)
  documents = documents - 1
  paragraphs = paragraphs - record_header(old_rec).paragraphs
end

if p.delete then
  count_up()
  return {'ok', {}, {}, affected, 0}
end

local sharing = {}  -- for each band, the versions that held it before this one
for _, e in ipairs(entries(ARGV[4], p.band_width, p.bands)) do
  local _, _, before = add(e[1], e[2], serial, p.inline, true)
  sharing[#sharing + 1] = before
end
for _, e in ipairs(entries(ARGV[5], p.para_width, p.paras)) do
  local size, new = add(e[1], e[2], serial, p.inline, false)
  if new then
    if size == 1 then distinct = distinct + 1 end
    if size == p.boilerplate_at then
      -- The paragraph just became boilerplate: every document holding it carries the flag.
      for _, s in ipairs(members(e[1], e[2])) do redis.call('SETBIT', p.boilerplate_flag, s, 1) end
    elseif size > p.boilerplate_at then
      redis.call('SETBIT', p.boilerplate_flag, serial, 1)
    end
  end
end
for _, key in ipairs(p.flags) do redis.call('SETBIT', key, serial, 1) end

local copies = {}
for _, e in ipairs(entries(ARGV[6], p.content_width, p.contents)) do
  local _, _, before = add(e[1], e[2], serial, p.inline, true)
  copies[#copies + 1] = before
end
local seen = {}
local exact = {}
for _, other in ipairs(related(copies, p.records, serial, seen, p.max_exact)) do
  exact[#exact + 1] = record_id(other[2])
  redis.call('SETBIT', p.exact_flag, other[1], 1)
end
if #exact > 0 then redis.call('SETBIT', p.exact_flag, serial, 1) end

-- Near duplicates: candidates from the bands, scored on the stored signatures, flagged on
-- both sides at or over the threshold.
local near = {}
local sig = record_signature(record)
if #sig > 0 then
  for _, other in ipairs(related(sharing, p.records, serial, seen, p.max_candidates)) do
    local theirs = record_signature(other[2])
    if #theirs == #sig then
      local score = similarity(sig, theirs, p.wide)
      if score >= p.near_threshold then
        near[#near + 1] = record_id(other[2])
        near[#near + 1] = tostring(score)
        redis.call('SETBIT', p.near_flag, other[1], 1)
      end
    end
  end
  if #near > 0 then redis.call('SETBIT', p.near_flag, serial, 1) end
end
documents = documents + 1
paragraphs = paragraphs + p.paragraphs
count_up()
add(id_key, id_field, serial, p.inline, false)
if #affected > 0 then
  local packed = {}
  for k, s in ipairs(affected) do packed[k] = struct.pack('<I4', s) end
  redis.call('HSET', record_key(p.records, serial), serial .. p.refresh, table.concat(packed))
end
redis.call('HSET', record_key(p.records, serial), serial, record)
return {'ok', exact, near, affected, serial}
