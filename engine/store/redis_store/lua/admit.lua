-- ADMIT: one dial, atomically. Replays the answer of a call id decided already; else reads
-- the contact's sticky caller ID and picks the engine's answer (the plan), gives expired
-- leases back, takes a channel or refuses at the limit, and keeps the record.
--
-- A dial that runs past its deadline (A.deadline_ms, Redis's clock) reads and writes nothing:
-- its caller has answered 503 already, so whatever Redis did for it would be a channel held
-- for a call nobody placed. However long Redis was stalled, a late dial takes nothing.
--
-- The record of an allowed call, K.record, is one string (lua/record.lua); the fields
-- after k come ready-made from the caller, in A.tail ('<c> <n> <f> <u> <t> <l>|').
-- A remembered denial, K.denied (a string): '<r> <f> <user> <limits>|<answer>', limits being
-- 'calls,account calls,user limit,account limit' for a channel-limit denial, else '-'.
--
-- Every argument costs Redis about a tenth of this script's own work, so a dial passes only
-- what its path reads. A.flags is three characters, '1' or '0' each: remember (a call id the
-- client chose: replay it, remember a denial), counted (takes a channel), allowed (the plan's
-- answer allows the call). K.denied, A.fingerprint and A.nonce come when the dial remembers or
-- may take a sticky caller ID; K.sticky, A.contact, A.sticky_answer and A.sticky_ids only for
-- the latter (the contact's sticky caller ID, if one of A.sticky_ids, answers instead: the
-- engine's callerid.sticky_numbers decides when sticky applies and from which numbers).
--
-- Rotation and daily caps (callerid/rotation.py): K.usage counts the calls each number placed
-- on the account's day; every allowed call that takes a channel counts against its caller
-- ID. A.cap/A.caps, when given, are the daily caps: a sticky caller ID over its cap is passed
-- over. A.steps, when given, is the rotation that answers instead of the plan's answer (then
-- A.answer is its denial for when every number is capped, and the allowed flag is '0'):
-- '<rule> <number> <number>...;' per step; the first step with a number under its cap gives
-- the least used of its numbers (the first on a tie), its answer being the array header,
-- the rule, and A.pick (the answer's other fields, msgpack).
--
-- Do-not-call lists (engine/store/dnc.py): with a fourth flag '1', the last key is the set
-- of the destination's bucket and the last argument the destination (E.164); listed, the dial
-- is denied before anything else is read or taken (remembered as '<r> <f> <user> dnc|<to>').
--
-- Returns {code, now, ...}:
--   0 LATE     {0, now}: past the deadline; nothing read or written
--   1 REPLAY   {1, now, f, d, x, s, c}: the record of an allowed call
--   2 REPLAY_DENIAL  {2, now, denial}
--   3 ALLOWED  {3, now, lease expiry, sticky or rotation caller ID taken or '', calls in the
--              account (-1: not counted, the account having no limit), the rotation's rule
--              or '' (then a non-empty caller ID is a sticky one)}
--   4 DENIED   {4, now}: the plan's own denial (remembered when the dial remembers)
--   5 LIMIT    {5, now, the user's calls, the account's calls}
--   6 DO_NOT_CALL {6, now}: the destination is on the account's do-not-call list
if now > tonumber(A.deadline_ms) then return {0, now} end
local YES = 49  -- string.byte('1')
local remember, counted, allowed, dnc = string.byte(A.flags, 1, 4)
remember, counted, allowed = remember == YES, counted == YES, allowed == YES
-- A call id the client chose may have been decided already; one callgate made up is new.
if remember then
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
local function remember_denial(limits, answer)
  if remember then
    redis.call('SET', K.denied, string.format('%d ', now + RETENTION_MS) .. A.fingerprint .. ' '
      .. A.user .. ' ' .. limits .. '|' .. answer, 'PX', 'RETENTION_MS')
  end
end
if dnc == YES then
  local to = ARGV[#ARGV]
  local member = string.format('%d', math.floor(tonumber(string.sub(to, 2)) / 65536))
  if redis.call('SISMEMBER', KEYS[#KEYS], member) == 1 then
    remember_denial('dnc', to)
    return {6, now}
  end
end
local answer, sticky, keep, rule = A.answer, '', A.keep, ''
if K.sticky then
  local entry = redis.call('HGET', K.sticky, A.contact)
  if entry then
    local caller, expires = string.match(entry, '^(%S+) (%d+)$')
    if caller and tonumber(expires) > now
        and string.find(A.sticky_ids, ',' .. caller .. ',', 1, true) then
      local cap = A.cap and cap_of(caller)
      if not cap or tonumber(redis.call('HGET', K.usage, caller) or '0') < cap then
        answer, allowed, sticky, keep = A.sticky_answer, true, caller, caller
      end
    end
  end
end
if A.steps and sticky == '' then
  local best, name = rotate(K.usage)
  if best then
    answer = '\149' .. string.char(160 + #name) .. name .. A.pick
    allowed, sticky, keep, rule = true, best, best, name
  end
end
if not allowed then
  remember_denial('-', answer)
  return {4, now}
end
local expires = now + tonumber(A.ttl_ms)
local in_account = -1
if counted then
  -- Counted first, checked after. A dial under its limits needs no exact count: expired
  -- leases only ever make the counts too high, so they are given back before any refusal,
  -- and otherwise now and then (about one dial in 16) so that they never pile up.
  if now % 16 == 0 then purge() end
  local user_limit, cap = tonumber(A.user_limit), tonumber(A.account_limit)
  local held = redis.call('HINCRBY', K.counts, A.user, '1')
  if cap then in_account = redis.call('ZCARD', K.leases) end
  if held > user_limit or (cap and in_account >= cap) then
    purge()
    held = tonumber(redis.call('HGET', K.counts, A.user))
    in_account = redis.call('ZCARD', K.leases)
    if held > user_limit or (cap and in_account >= cap) then
      held = held - 1
      if held <= 0 then redis.call('HDEL', K.counts, A.user)
      else redis.call('HINCRBY', K.counts, A.user, '-1') end
      remember_denial(held .. ',' .. in_account .. ',' .. A.user_limit .. ',' .. A.account_limit,
                      '')
      return {5, now, held, in_account}
    end
  end
  redis.call('ZADD', K.leases, string.format('%d', expires), A.user .. '|' .. A.call_id)
  if in_account >= 0 then in_account = in_account + 1 end
  if keep ~= '' and redis.call('HINCRBY', K.usage, keep, '1') == 1 then
    redis.call('EXPIRE', K.usage, USAGE_KEPT_S)
  end
end
local retain = expires + RETENTION_MS
redis.call('SET', K.record, string.format('%d %d  ', retain, expires) .. sticky .. ' ' .. keep
  .. ' ' .. A.tail .. answer, 'PX', string.format('%d', retain - now))
return {3, now, expires, sticky, in_account, rule}
