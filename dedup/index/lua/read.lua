-- Read-only lookups of the store, one round trip each. common.lua comes first.
-- ARGV[1]: JSON plan with ``mode`` and key prefixes.
--   resolve: ARGV[2] id entry and id, ARGV[3] paragraph entries ->
--            {serial, record or nil, serials owed a flag refresh (packed) or nil,
--             count of each paragraph entry...}
--   related: ARGV[2..4] band, paragraph and content entries of document ``p.serial`` ->
--            {exact ids, candidate ids, candidate signatures, paragraph counts,
--             for each paragraph shared with 2 to boilerplate_at - 1 documents the other ids}
--   content: ARGV[2] content entries -> for each, the ids of up to ``p.limit`` documents
local p = cjson.decode(ARGV[1])

-- The ids of up to ``limit`` documents holding an entry, other than version ``skip``.
local function ids_of(entry, skip, limit)
  local out = {}
  for _, other in ipairs(related(holders({entry}), p.records, skip, {}, limit)) do
    out[#out + 1] = record_id(other[2])
  end
  return out
end

if p.mode == 'resolve' then
  local serial, rec = resolve(ARGV[2], p.id_width, p.ids, p.records)
  local owed = false
  if rec then owed = refresh_owed(p.records, serial, p.refresh) end
  local out = {serial, rec, owed}
  for _, e in ipairs(entries(ARGV[3], p.para_width, p.paras)) do out[#out + 1] = count(e[1], e[2]) end
  return out
end

if p.mode == 'content' then
  local out = {}
  for _, e in ipairs(entries(ARGV[2], p.content_width, p.contents)) do
    out[#out + 1] = ids_of(e, -1, p.limit)
  end
  return out
end

-- related
local serial = p.serial
local seen = {}
local exact = {}
local contents = holders(entries(ARGV[4], p.content_width, p.contents))
for _, other in ipairs(related(contents, p.records, serial, seen, p.max_exact)) do
  exact[#exact + 1] = record_id(other[2])
end
local candidates, signatures = {}, {}
local bands = holders(entries(ARGV[2], p.band_width, p.bands))
for _, other in ipairs(related(bands, p.records, serial, seen, p.max_candidates)) do
  candidates[#candidates + 1] = record_id(other[2])
  signatures[#signatures + 1] = record_signature(other[2])
end
local counts, shared = {}, {}
for _, e in ipairs(entries(ARGV[3], p.para_width, p.paras)) do
  local n = count(e[1], e[2])
  counts[#counts + 1] = n
  if n >= 2 and n < p.boilerplate_at then
    shared[#shared + 1] = ids_of(e, serial, p.boilerplate_at)
  else
    shared[#shared + 1] = {}
  end
end
return {exact, candidates, signatures, counts, shared}
