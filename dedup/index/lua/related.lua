-- What the rest of the corpus holds for one document version, for its report. Read-only.
-- Runs after common.lua.
-- KEYS: none (the layout names the key prefixes).
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: the version's serial (left out of every answer)
-- ARGV[3], ARGV[4], ARGV[5]: its band, paragraph and content entries
-- ARGV[6]: its near-copy piece entries ('' when the index keeps none)
-- Returns {exact copies' ids (L.max_exact at most), candidate ids (L.max_candidates at most),
--          the candidates' signatures, the count of each paragraph entry,
--          for each paragraph entry held by 2 to L.boilerplate_at - 1 documents the other
--          documents' ids, else an empty list,
--          the count of each piece entry,
--          for each piece entry held by fewer than L.boilerplate_at documents the other
--          versions' serials (with a record), else an empty list,
--          those versions' serials and records, flat}
local serial = tonumber(ARGV[2])

-- The ids of up to ``limit`` documents holding an entry, other than version ``skip``.
local function ids_of(entry, skip, limit)
  local out = {}
  for _, other in ipairs(related(holders({entry}), skip, {}, limit)) do
    out[#out + 1] = record_id(other[2])
  end
  return out
end

local seen = {}
local exact = {}
for _, other in ipairs(related(holders(entries(ARGV[5], L.contents)), serial, seen, L.max_exact)) do
  exact[#exact + 1] = record_id(other[2])
end
local candidates, signatures = {}, {}
local bands = holders(entries(ARGV[3], L.bands))
for _, other in ipairs(related(bands, serial, seen, L.max_candidates)) do
  candidates[#candidates + 1] = record_id(other[2])
  signatures[#signatures + 1] = record_signature(other[2])
end
local counts, shared = {}, {}
for _, e in ipairs(entries(ARGV[4], L.paras)) do
  local n = count(e[1], e[2])
  counts[#counts + 1] = n
  if n >= 2 and n < L.boilerplate_at then
    shared[#shared + 1] = ids_of(e, serial, L.boilerplate_at)
  else
    shared[#shared + 1] = {}
  end
end
local piece_counts, holding, records = {}, {}, {}
local kept = {}
for _, e in ipairs(entries(ARGV[6], L.pieces)) do
  local n = count(e[1], e[2])
  piece_counts[#piece_counts + 1] = n
  local these = {}
  if n >= 2 and n < L.boilerplate_at then
    for _, s in ipairs(members(e[1], e[2])) do
      if s ~= serial then
        if kept[s] == nil then
          local rec = get_record(s)
          kept[s] = rec or false
          if rec then
            records[#records + 1] = s
            records[#records + 1] = rec
          end
        end
        if kept[s] then these[#these + 1] = s end
      end
    end
  end
  holding[#holding + 1] = these
end
return {exact, candidates, signatures, counts, shared, piece_counts, holding, records}
