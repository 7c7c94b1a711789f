-- END: a call is over. Gives its channel back and, for a connected call, records the caller
-- ID it used as the contact's sticky caller ID (and prunes a few expired sticky entries).
-- Returns:
--   0 MISSING   {0}: no such call (or not the given user's)
--   1 DENIED    {1, denial}: the call id was denied; it holds no channel
--   2 ENDED     {2, outcome, 1 if it recorded a sticky caller ID}: ended before
--   3 OK        {3, 1 if it records a sticky caller ID, calls left in the account}
local rec, reply = kept_call('k', 't', 'l')
if not rec then return reply end
local records = rec[5] ~= '' and rec[6] ~= ''
if rec[3] ~= '' then return {2, rec[3], records and 1 or 0} end
local retain = now + tonumber(A.retention_ms)
redis.call('HSET', K.record, 'o', A.outcome, 'r', ms(retain))
redis.call('PEXPIRE', K.record, retain - now)
if redis.call('ZREM', K.leases, A.call_id) == 1 then release(A.call_id) end
if records and A.connected == '1' then
  local ttl = tonumber(rec[7])
  local expires = now + ttl
  redis.call('HSET', K.sticky, rec[6], rec[5] .. ' ' .. ms(expires))
  redis.call('ZADD', K.sticky_expiry, expires, rec[6])
  outlive(K.sticky, ttl)
  outlive(K.sticky_expiry, ttl)
  local stale = redis.call('ZRANGEBYSCORE', K.sticky_expiry, '-inf', now, 'LIMIT', 0, 16)
  for i = 1, #stale do
    redis.call('HDEL', K.sticky, stale[i])
    redis.call('ZREM', K.sticky_expiry, stale[i])
  end
end
return {3, records and 1 or 0, redis.call('ZCARD', K.leases)}
