-- Index one document atomically: remove what an older version of it put in the index, add
-- the new entries, and return the documents it may duplicate with their signatures.
-- ARGV[1]: JSON plan (keys and scalars), ARGV[2]: packed signature, ARGV[3]: fingerprints.
-- Every write is a set or hash write keyed by the document id, so running it twice for the
-- same document ends in the same state.
local p = cjson.decode(ARGV[1])
local id = p.id
local current = redis.call('HGET', p.doc, 'content') or ''
if current ~= p.expect then
  return {'conflict'}
end
local counted = tonumber(redis.call('HGET', p.doc, 'paragraphs') or '0')
for _, key in ipairs(p.old_bands) do redis.call('SREM', key, id) end
for _, key in ipairs(p.old_paras) do
  if redis.call('SREM', key, id) == 1 and redis.call('EXISTS', key) == 0 then
    redis.call('HINCRBY', p.counters, 'distinct_paragraphs', -1)
  end
end
if p.old_content ~= '' then redis.call('SREM', p.old_content, id) end
for _, key in ipairs(p.all_flags) do redis.call('ZREM', key, id) end

for _, key in ipairs(p.bands) do redis.call('SADD', key, id) end
for _, key in ipairs(p.paras) do
  if redis.call('SADD', key, id) == 1 then
    local size = redis.call('SCARD', key)
    if size == 1 then redis.call('HINCRBY', p.counters, 'distinct_paragraphs', 1) end
    if size == p.boilerplate_at then
      -- The paragraph just became boilerplate: every document holding it carries the flag.
      for _, member in ipairs(redis.call('SMEMBERS', key)) do
        redis.call('ZADD', p.boilerplate_flag, p.ts, member)
      end
    elseif size > p.boilerplate_at then
      redis.call('ZADD', p.boilerplate_flag, p.ts, id)
    end
  end
end
redis.call('SADD', p.content_key, id)
redis.call('HSET', p.doc, 'content', p.content, 'url', p.url, 'sig', ARGV[2], 'fps', ARGV[3],
  'report', p.report, 'added', p.ts, 'paragraphs', p.paragraphs)
redis.call('HINCRBY', p.counters, 'paragraphs', p.paragraphs - counted)
redis.call('ZADD', p.documents, p.ts, id)
for _, key in ipairs(p.flags) do redis.call('ZADD', key, p.ts, id) end

local exact = {}
for _, member in ipairs(redis.call('SMEMBERS', p.content_key)) do
  if member ~= id then table.insert(exact, member) end
end
local candidates = {}
if #p.bands > 0 then
  local seen = 0
  for _, member in ipairs(redis.call('SUNION', unpack(p.bands))) do
    if member ~= id and seen < p.max_candidates then
      seen = seen + 1
      table.insert(candidates, member)
      table.insert(candidates, redis.call('HGET', p.doc_prefix .. member, 'sig') or '')
    end
  end
end
return {'ok', exact, candidates}
