-- The current version of a document, and how many documents hold each of its paragraphs.
-- Read-only. Runs after common.lua.
-- KEYS: none (the layout names the key prefixes).
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: the document's id entry, followed by its id
-- ARGV[3]: paragraph entries to count ('' for none)
-- ARGV[4]: near-copy piece entries to count ('' for none)
-- Returns {serial (0 when not indexed), record or nil,
--          serials owed a flag refresh (packed) or nil, {count of each paragraph entry},
--          {count of each piece entry}}
local serial, rec = resolve(ARGV[2])
local owed = false
if rec then owed = refresh_owed(serial) end
local counts, piece_counts = {}, {}
for _, e in ipairs(entries(ARGV[3], L.paras)) do counts[#counts + 1] = count(e[1], e[2]) end
for _, e in ipairs(entries(ARGV[4], L.pieces)) do
  piece_counts[#piece_counts + 1] = count(e[1], e[2])
end
return {serial, rec, owed, counts, piece_counts}
