-- UNDO_ADMIT: give back the channel of an admission whose answer never reached its caller
-- (the connection broke while the dial was in flight), unless a retry of the call id has
-- taken the record over since, or the call has ended. Safe to run more than once.
-- Returns 1 when it undid the admission, else 0.
local rec = get_record()
if not rec or rec.n ~= A.nonce or rec.o ~= '' then return 0 end
redis.call('DEL', K.record)
if rec.c == '1' and redis.call('ZREM', K.leases, rec.u .. '|' .. A.call_id) == 1 then
  release(rec.u)
end
return 1
