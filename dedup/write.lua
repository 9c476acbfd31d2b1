-- Index (or delete) one document atomically: remove what an older version of it put in the
-- index, add the new entries, find its duplicates among the documents sharing an LSH band
-- or its exact content, and raise the flags on both sides.
-- ARGV[1]: JSON plan (keys and scalars), ARGV[2]: packed signature, ARGV[3]: fingerprints.
-- Every write is a set, sorted-set or hash write keyed by the document id, so running it
-- twice for the same document ends in the same state. Redis does not roll a script back
-- when a command in it fails, so the document's own hash, which says what is indexed, is
-- written last, right after the one counter that is not idempotent: a script stopped
-- half-way leaves the old content recorded, and the retry redoes everything.
local p = cjson.decode(ARGV[1])
local id = p.id
local sig = ARGV[2]
local current = redis.call('HGET', p.doc, 'content') or ''
if current ~= p.expect then
  return {'conflict'}
end

-- Documents whose flags may change because this one goes away.
local affected = {}
if #p.old_bands > 0 then
  for _, member in ipairs(redis.call('SUNION', unpack(p.old_bands))) do
    if member ~= id then affected[#affected + 1] = member end
  end
end
if p.old_content ~= '' then
  for _, member in ipairs(redis.call('SMEMBERS', p.old_content)) do
    if member ~= id then affected[#affected + 1] = member end
  end
end

local counted = tonumber(redis.call('HGET', p.doc, 'paragraphs') or '0')
for _, key in ipairs(p.old_bands) do redis.call('SREM', key, id) end
for _, key in ipairs(p.old_paras) do
  if redis.call('SREM', key, id) == 1 then
    local size = redis.call('SCARD', key)
    if size == 0 then
      redis.call('HINCRBY', p.counters, 'distinct_paragraphs', -1)
    elseif size == p.boilerplate_at - 1 then
      for _, member in ipairs(redis.call('SMEMBERS', key)) do affected[#affected + 1] = member end
    end
  end
end
if p.old_content ~= '' then redis.call('SREM', p.old_content, id) end
for _, key in ipairs(p.all_flags) do redis.call('ZREM', key, id) end

if p.delete then
  redis.call('ZREM', p.documents, id)
  redis.call('HINCRBY', p.counters, 'paragraphs', -counted)
  redis.call('DEL', p.doc)
  return {'ok', {}, {}, affected}
end

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
redis.call('ZADD', p.documents, p.ts, id)
for _, key in ipairs(p.flags) do redis.call('ZADD', key, p.ts, id) end

local exact = {}
local is_exact = {}
for _, member in ipairs(redis.call('SMEMBERS', p.content_key)) do
  if member ~= id then
    exact[#exact + 1] = member
    is_exact[member] = true
  end
end
if #exact > 0 then
  redis.call('ZADD', p.exact_flag, p.ts, id)
  for _, member in ipairs(exact) do redis.call('ZADD', p.exact_flag, p.ts, member) end
end

-- Near duplicates: candidates from the bands, scored on the stored signatures (the share
-- of equal 4-byte MinHash values), flagged on both sides at or over the threshold.
local near = {}
if #p.bands > 0 then
  local width = string.len(sig)
  local positions = width / 4
  local seen = 0
  for _, member in ipairs(redis.call('SUNION', unpack(p.bands))) do
    if member ~= id and not is_exact[member] and seen < p.max_candidates then
      seen = seen + 1
      local other = redis.call('HGET', p.doc_prefix .. member, 'sig')
      if other and string.len(other) == width then
        local equal = 0
        for k = 1, width, 4 do
          if string.sub(sig, k, k + 3) == string.sub(other, k, k + 3) then equal = equal + 1 end
        end
        local score = equal / positions
        if score >= p.near_threshold then
          near[#near + 1] = member
          near[#near + 1] = tostring(score)
        end
      end
    end
  end
  if #near > 0 then
    redis.call('ZADD', p.near_flag, p.ts, id)
    for k = 1, #near, 2 do redis.call('ZADD', p.near_flag, p.ts, near[k]) end
  end
end
redis.call('HINCRBY', p.counters, 'paragraphs', p.paragraphs - counted)
redis.call('HSET', p.doc, 'content', p.content, 'url', p.url, 'sig', sig, 'fps', ARGV[3],
  'report', p.report, 'added', p.ts, 'paragraphs', p.paragraphs)
return {'ok', exact, near, affected}
