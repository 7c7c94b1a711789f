-- HEARTBEAT: extend a call's lease to now + A.ttl_ms.
-- Returns:
--   0 MISSING  {0}      1 DENIED {1, denial}     2 ENDED {2, outcome}
--   3 EXPIRED  {3}: the lease ran out; the channel is free again
--   4 OK       {4, the new lease expiry}
--   5 EMERGENCY {5}: an emergency call holds no channel, so no lease to extend
local rec, reply = kept_call()
if not rec then return reply end
if rec.o ~= '' then return {2, rec.o} end
if rec.c ~= '1' then return {5} end
if rec.x <= now then return {3} end
local expires = now + tonumber(A.ttl_ms)
rec.x, rec.r = expires, expires + RETENTION_MS
write_record(rec)
redis.call('ZADD', K.leases, 'XX', string.format('%d', expires), rec.u .. '|' .. A.call_id)
return {4, expires}
