-- UNDO_ADMIT: give back the channel of an admission whose answer never reached its caller
-- (the connection broke while the dial was in flight), unless a retry of the call id has
-- taken the record over since, or the call has ended. Safe to run more than once.
-- Returns 1 when it undid the admission, else 0.
local rec = redis.call('HMGET', K.record, 'n', 'o', 'c')
if rec[1] ~= A.nonce or rec[2] ~= '' then return 0 end
redis.call('DEL', K.record)
if rec[3] == '1' and redis.call('ZREM', K.leases, A.call_id) == 1 then
  local holder = redis.call('HGET', K.holders, A.call_id)
  if holder then
    redis.call('HDEL', K.holders, A.call_id)
    local user = string.match(holder, '^([^|]*)')
    if redis.call('HINCRBY', K.counts, user, -1) <= 0 then redis.call('HDEL', K.counts, user) end
  end
end
return 1
