-- UNDO_ADMIT: give back the channel of an admission whose answer never reached its caller
-- (the connection broke while the dial was in flight), unless a retry of the call id has
-- taken the record over since, or the call has ended; its call no longer counts against its
-- caller ID's calls today. Safe to run more than once (the record is gone after the first).
-- Returns 1 when it undid the admission, else 0.
local rec = get_record()
if not rec or rec.n ~= A.nonce or rec.o ~= '' then return 0 end
redis.call('DEL', K.record)
if rec.c == '1' and rec.k ~= '' and redis.call('HINCRBY', K.usage, rec.k, -1) <= 0 then
  redis.call('HDEL', K.usage, rec.k)  -- the admission counted against its caller ID: no more
end
if rec.c == '1' and redis.call('ZREM', K.leases, rec.u .. '|' .. A.call_id) == 1 then
  release(rec.u)
end
return 1
