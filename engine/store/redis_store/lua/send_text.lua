-- SEND_TEXT: pick the number a text goes out from, count it against that number's texts of
-- the account's day (K.texts) and make it the contact's sticky number, in one step
-- (callerid/sms.py; the same pick as ADMIT's, without a channel or a call record).
-- A.sticky_ids: when not '', the contact's sticky number answers first if it is one of
-- them, unexpired and under its cap. A.steps: when not '', the rotation, as ADMIT's: the
-- first step with a number under its cap gives its least used; none: no sender. Without
-- steps, A.sender is the sender ('' when the text is denied).
-- Returns {code, ...}:
--   0 LATE  {0}: past the deadline; nothing read or written
--   1 NONE  {1}: no sender (the plan's denial, or every number offered is capped)
--   2 SENT  {2, rule ('sticky', a step's rule, or '' for A.sender), sender}
--   3 DO_NOT_CALL {3}: A.dnc (when given) is on the do-not-call list, in its set K.dnc
if now > tonumber(A.deadline_ms) then return {0} end
if A.dnc then
  local member = string.format('%d', math.floor(tonumber(string.sub(A.dnc, 2)) / 65536))
  if redis.call('SISMEMBER', K.dnc, member) == 1 then return {3} end
end
local sender, rule = '', ''
if A.sticky_ids ~= '' then
  local entry = redis.call('HGET', K.sticky, A.contact)
  if entry then
    local caller, expires = string.match(entry, '^(%S+) (%d+)$')
    if caller and tonumber(expires) > now
        and string.find(A.sticky_ids, ',' .. caller .. ',', 1, true) then
      local cap = cap_of(caller)
      if not cap or tonumber(redis.call('HGET', K.texts, caller) or '0') < cap then
        sender, rule = caller, 'sticky'
      end
    end
  end
end
if sender == '' and A.steps ~= '' then
  local best, name = rotate(K.texts)
  if best then sender, rule = best, name end
elseif sender == '' then
  sender = A.sender
end
if sender == '' then return {1} end
if redis.call('HINCRBY', K.texts, sender, 1) == 1 then
  redis.call('EXPIRE', K.texts, USAGE_KEPT_S)
end
local ttl = tonumber(A.sticky_ttl_ms)
local expires = string.format('%d', now + ttl)
redis.call('HSET', K.sticky, A.contact, sender .. ' ' .. expires)
redis.call('ZADD', K.sticky_expiry, expires, A.contact)
for _, key in ipairs({K.sticky, K.sticky_expiry}) do
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
return {2, rule, sender}
