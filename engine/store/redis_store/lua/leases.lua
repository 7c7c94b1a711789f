-- Giving channels back (after clock.lua).
-- A channel is given back: the lease is gone from K.leases; forget its holder and count it
-- off its user.
local function release(call_id)
  local holder = redis.call('HGET', K.holders, call_id)
  if holder then
    redis.call('HDEL', K.holders, call_id)
    local user = string.match(holder, '^([^|]*)')
    if redis.call('HINCRBY', K.counts, user, -1) <= 0 then redis.call('HDEL', K.counts, user) end
  end
end
-- Leases past their expiry give their channels back (each once: amortised O(1) a lease).
-- The lease sets carry no TTL of their own: Redis drops a set when its last member goes, and
-- the next dial of the account gives back what expired meanwhile.
local function purge()
  local expired = redis.call('ZRANGEBYSCORE', K.leases, '-inf', now)
  if #expired > 0 then
    for i = 1, #expired do release(expired[i]) end
    redis.call('ZREMRANGEBYSCORE', K.leases, '-inf', now)
  end
end
