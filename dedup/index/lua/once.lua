-- Closes every script that writes (dedup.index.scripts.ONCE), whose text stands before this
-- as the function ``body``: the call runs once whatever the times it is sent. A reply lost
-- after the server ran the call (a dropped connection, a failover) makes the client send
-- it again; the second run finds the first one's reply kept and answers it, changing nothing.
-- KEYS[#KEYS]: the call's reply key (unique to the call, of the same slot as its other keys)
-- ARGV[#ARGV]: how many seconds the reply is kept (longer than a client goes on sending)
-- Both are taken off before ``body`` runs, so it sees its own KEYS and ARGV. A body that
-- answers false after its reply wrote nothing: sent again, it may as well run again.
local reply_key, keep = table.remove(KEYS), table.remove(ARGV)
local kept = redis.call('GET', reply_key)
if kept then return cmsgpack.unpack(kept) end
local reply, wrote = body()
if wrote ~= false then redis.call('SET', reply_key, cmsgpack.pack(reply), 'EX', keep) end
return reply
