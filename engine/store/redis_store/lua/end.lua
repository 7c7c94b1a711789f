-- END: a call is over. Gives its channel back and, for a connected call, records the caller
-- ID it used as the contact's sticky caller ID (and prunes a few expired sticky entries).
-- With A.window ('<calls> <least>', the account's auto_rest: protocol.AnswerWindow), a call
-- that counts against its caller ID (rec.c '1'; rec.k is its caller ID) adds '1' (connected)
-- or '0' to the number's last ended calls in K.answers, the last <calls> of them kept; a full
-- window with fewer than <least> connected calls is due a rest: it is cleared, so that the
-- count starts afresh and only this end, of all the processes ending its calls, is told.
-- Returns:
--   0 MISSING   {0}: no such call (or not the given user's)
--   1 DENIED    {1, denial}: the call id was denied; it holds no channel
--   2 ENDED     {2, outcome, 1 if it recorded a sticky caller ID}: ended before
--   3 OK        {3, 1 if it records a sticky caller ID, calls left in the account, the
--               caller ID it counts against ('' none: an emergency call), 1 if a rest is due}
local function outlive(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
local rec, reply = kept_call()
if not rec then return reply end
local records = rec.k ~= '' and rec.t ~= ''
if rec.o ~= '' then return {2, rec.o, records and 1 or 0} end
rec.o, rec.r = A.outcome, now + RETENTION_MS
write_record(rec)
if redis.call('ZREM', K.leases, rec.u .. '|' .. A.call_id) == 1 then release(rec.u) end
if records and A.connected == '1' then
  local ttl = tonumber(rec.l)
  local expires = string.format('%d', now + ttl)
  redis.call('HSET', K.sticky, rec.t, rec.k .. ' ' .. expires)
  redis.call('ZADD', K.sticky_expiry, expires, rec.t)
  outlive(K.sticky, ttl)
  outlive(K.sticky_expiry, ttl)
  local stale = redis.call('ZRANGEBYSCORE', K.sticky_expiry, '-inf', now, 'LIMIT', 0, 16)
  for i = 1, #stale do
    redis.call('HDEL', K.sticky, stale[i])
    redis.call('ZREM', K.sticky_expiry, stale[i])
  end
end
local number = rec.c == '1' and rec.k or ''
local due = 0
if A.window and number ~= '' then
  local calls, least = string.match(A.window, '^(%d+) (%d+)$')
  calls, least = tonumber(calls), tonumber(least)
  local seen = (redis.call('HGET', K.answers, number) or '') .. (A.connected == '1' and '1' or '0')
  if #seen > calls then seen = string.sub(seen, -calls) end
  local _, connected = string.gsub(seen, '1', '')
  if #seen >= calls and connected < least then
    redis.call('HDEL', K.answers, number)
    due = 1
  else
    redis.call('HSET', K.answers, number, seen)
  end
end
return {3, records and 1 or 0, redis.call('ZCARD', K.leases), number, due}
