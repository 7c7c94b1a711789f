-- UNDO_ADMIT: give back the channel of an admission whose answer never reached its caller
-- (the connection broke while the dial was in flight), unless a retry of the call id has
-- taken the record over since, or the call has ended. Safe to run more than once.
-- Returns 1 when it undid the admission, else 0.
local text = redis.pcall('GET', K.record)
if type(text) ~= 'string' then return 0 end
-- The record's fields o, c, n and u (lua/record.lua).
local outcome, counted, nonce, user = string.match(text,
  '^%d+ %d+ (%S*) %S* %S* ([01]) (%S+) %S+ (%S+) ')
if nonce ~= A.nonce or outcome ~= '' then return 0 end
redis.call('DEL', K.record)
if counted == '1' and redis.call('ZREM', K.leases, user .. '|' .. A.call_id) == 1 then
  if redis.call('HINCRBY', K.counts, user, -1) <= 0 then redis.call('HDEL', K.counts, user) end
end
return 1
