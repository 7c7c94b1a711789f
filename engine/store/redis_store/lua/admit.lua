-- ADMIT: one dial, atomically. Replays the answer of a call id decided already; else reads
-- the contact's sticky caller ID and picks the engine's answer (the plan), gives expired
-- leases back, takes a channel or refuses at the limit, and keeps the record.
--
-- A dial that runs past its deadline (A.deadline_ms, Redis's clock) reads and writes nothing:
-- its caller has answered 503 already, so whatever Redis did for it would be a channel held
-- for a call nobody placed. However long Redis was stalled, a late dial takes nothing.
--
-- The record of an allowed call, K.record, is one string (lua/record.lua).
-- A remembered denial, K.denied (a string): '<r> <f> <user> <limits>|<answer>', limits being
-- 'calls,account calls,user limit,account limit' for a channel-limit denial, else '-'.
--
-- Returns {code, now, ...}:
--   0 LATE     {0, now}: past the deadline; nothing read or written
--   1 REPLAY   {1, now, f, d, x, s, c}: the record of an allowed call
--   2 REPLAY_DENIAL  {2, now, denial}
--   3 ALLOWED  {3, now, lease expiry, sticky caller ID taken or '', calls in the account
--              (-1: not counted, the account having no limit)}
--   4 DENIED   {4, now}: the plan's own denial (remembered when A.remember is 1)
--   5 LIMIT    {5, now, the user's calls, the account's calls}
if now > tonumber(A.deadline_ms) then return {0, now} end
-- A call id the client chose may have been decided already; one callgate made up is new.
if A.remember == '1' then
  local rec = get_record()
  if rec and rec.r > now then
    -- A retry owns the record from now on: an undo of an earlier attempt leaves it alone.
    if rec.f == A.fingerprint and rec.n ~= A.nonce then
      rec.n = A.nonce
      write_record(rec)
    end
    return {1, now, rec.f, rec.d, rec.x, rec.s, rec.c}
  end
  local denial = redis.call('GET', K.denied)
  if denial then
    if denial_until(denial) > now then return {2, now, denial} end
    redis.call('DEL', K.denied)
  end
end
local retention = tonumber(A.retention_ms)
local function remember(limits, answer)
  if A.remember == '1' then
    redis.call('SET', K.denied, (now + retention) .. ' ' .. A.fingerprint .. ' ' .. A.user
      .. ' ' .. limits .. '|' .. answer, 'PX', retention)
  end
end
local answer, allowed, sticky, keep = A.answer, A.allowed == '1', '', A.keep
if A.sticky_answer ~= '' and K.sticky then
  local entry = redis.call('HGET', K.sticky, A.contact)
  if entry then
    local caller, expires = string.match(entry, '^(%S+) (%d+)$')
    if caller and tonumber(expires) > now
        and string.find(A.sticky_ids, ',' .. caller .. ',', 1, true) then
      answer, allowed, sticky, keep = A.sticky_answer, true, caller, caller
    end
  end
end
if not allowed then
  remember('-', answer)
  return {4, now}
end
local ttl = tonumber(A.ttl_ms)
local expires = now + ttl
local in_account = -1
if A.counted == '1' then
  -- Counted first, checked after. A dial under its limits needs no exact count: expired
  -- leases only ever make the counts too high, so they are given back before any refusal,
  -- and otherwise now and then (about one dial in 16) so that they never pile up.
  if now % 16 == 0 then purge() end
  local user_limit, cap = tonumber(A.user_limit), tonumber(A.account_limit)
  local held = redis.call('HINCRBY', K.counts, A.user, 1)
  if cap then in_account = redis.call('ZCARD', K.leases) end
  if held > user_limit or (cap and in_account >= cap) then
    purge()
    held = tonumber(redis.call('HGET', K.counts, A.user))
    in_account = redis.call('ZCARD', K.leases)
    if held > user_limit or (cap and in_account >= cap) then
      held = held - 1
      if held <= 0 then redis.call('HDEL', K.counts, A.user)
      else redis.call('HINCRBY', K.counts, A.user, -1) end
      remember(held .. ',' .. in_account .. ',' .. A.user_limit .. ',' .. A.account_limit, '')
      return {5, now, held, in_account}
    end
  end
  redis.call('ZADD', K.leases, expires, A.user .. '|' .. A.call_id)
  if in_account >= 0 then in_account = in_account + 1 end
end
local retain = expires + retention
redis.call('SET', K.record, retain .. ' ' .. expires .. '  ' .. sticky .. ' ' .. keep
  .. ' ' .. A.counted .. ' ' .. A.nonce .. ' ' .. A.fingerprint .. ' ' .. A.user .. ' '
  .. A.contact .. ' ' .. A.sticky_ttl_ms .. '|' .. answer, 'PX', retain - now)
return {3, now, expires, sticky, in_account}
