-- HEARTBEAT: extend a call's lease to now + A.ttl_ms.
-- Returns:
--   0 MISSING  {0}      1 DENIED {1, denial}     2 ENDED {2, outcome}
--   3 EXPIRED  {3}: the lease ran out; the channel is free again
--   4 OK       {4, the new lease expiry}
--   5 EMERGENCY {5}: an emergency call holds no channel, so no lease to extend
local rec, reply = kept_call('c')
if not rec then return reply end
if rec[3] ~= '' then return {2, rec[3]} end
if rec[5] ~= '1' then return {5} end
if tonumber(rec[2]) <= now then return {3} end
local ttl = tonumber(A.ttl_ms)
local expires = now + ttl
local retain = expires + tonumber(A.retention_ms)
redis.call('HSET', K.record, 'x', ms(expires), 'r', ms(retain))
redis.call('PEXPIRE', K.record, retain - now)
redis.call('ZADD', K.leases, 'XX', expires, A.call_id)
return {4, expires}
