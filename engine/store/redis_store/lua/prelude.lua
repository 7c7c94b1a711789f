-- Shared by every script that reads the clock (prepended by scripts.py, after the generated
-- K and A tables).
-- Time is the Redis server's (TIME), plus A.skew_ms (0 outside tests): one clock for every
-- callgate process, whatever their own clocks say. Lua numbers are doubles, exact for
-- integers below 2^53; ms since the epoch stay far below that. ms() formats them where a
-- string is needed (tostring would print 1.8e+12).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(A.skew_ms)
local function ms(n) return string.format('%d', n) end
local function outlive(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
-- A remembered denial is '<retained until> <fingerprint> <user> <limits>|<answer>'.
local function denial_until(entry)
  return tonumber(string.match(entry, '^(%d+) '))
end
local function denial_user(entry)
  return string.match(entry, '^%d+ %S+ (%S+) ')
end
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
-- END and HEARTBEAT: the record of a call still kept (r, x, o, u, then the fields asked for),
-- else nil and the reply for one that is not: {0} missing (or another user's, when A.user
-- names one), {1, denial} a denied call id.
local function kept_call(...)
  local rec = redis.call('HMGET', K.record, 'r', 'x', 'o', 'u', ...)
  if not rec[1] or tonumber(rec[1]) <= now then
    local denial = redis.call('GET', K.denied)
    if denial and denial_until(denial) > now and (A.user == '' or denial_user(denial) == A.user) then
      return nil, {1, denial}
    end
    return nil, {0}
  end
  if A.user ~= '' and rec[4] ~= A.user then return nil, {0} end
  return rec
end
