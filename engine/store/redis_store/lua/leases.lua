-- Giving channels back (after clock.lua). K.leases holds one member per call holding a
-- channel, '<user>|<call id>', scored by its lease expiry (ms): the member names whose
-- channel it is, so giving one back reads nothing else.
local function release(user)
  if redis.call('HINCRBY', K.counts, user, '-1') <= 0 then redis.call('HDEL', K.counts, user) end
end
-- Leases past their expiry give their channels back (each once: amortised O(1) a lease), at
-- most 1,024 a call, so no script runs long (a backlog, say after a night without dials, goes
-- over the next calls). The lease sets carry no TTL of their own: Redis drops a set when its
-- last member goes, and the next dials of the account give back what expired meanwhile.
local function purge()
  local expired = redis.call('ZRANGEBYSCORE', K.leases, '-inf', now, 'LIMIT', 0, 1024)
  if #expired > 0 then
    for i = 1, #expired do release(string.match(expired[i], '^([^|]*)')) end
    redis.call('ZREM', K.leases, unpack(expired))
  end
end
