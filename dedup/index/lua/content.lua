-- The documents with exactly each of these contents, for a scraper checking a batch.
-- Read-only. Runs after common.lua.
-- KEYS: none (the layout names the key prefixes).
-- ARGV[1]: the layout (common.lua)
-- ARGV[2]: documents listed per content at most
-- ARGV[3]: content entries
-- Returns, for each content entry, the ids of the documents holding it
local limit = tonumber(ARGV[2])
local out = {}
for _, e in ipairs(entries(ARGV[3], L.contents)) do
  local ids = {}
  for _, other in ipairs(related(holders({e}), -1, {}, limit)) do
    ids[#ids + 1] = record_id(other[2])
  end
  out[#out + 1] = ids
end
return out
