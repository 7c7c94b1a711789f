-- The record of an allowed call (after clock.lua). K.record is one string, written by one
-- SET with its expiry, so a dial stores it with a single command:
--   '<r> <x> <o> <s> <k> <c> <n> <f> <u> <t> <l>|<d>'
--   r retained until (ms): a retry until then gets the same answer; the key expires then
--   x lease expiry (ms)            o the outcome once ended ('' in progress)
--   s the sticky caller ID the answer took ('' none)
--   k the caller ID to record as sticky if the call connects ('' none), t for which
--     contact ('' none), l for how long (ms)
--   c 1 counted, 0 emergency       n the nonce of the attempt that owns it
--   f fingerprint of the request   u user
--   d the answer (compact msgpack, any bytes)
-- No field before d holds a space or is empty where the pattern says %S+.
local function read_record(text)
  if not text then return nil end
  local r, x, o, s, k, c, n, f, u, t, l, d = string.match(text,
    '^(%d+) (%d+) (%S*) (%S*) (%S*) ([01]) (%S+) (%S+) (%S+) (%S*) (%d+)|(.*)$')
  if not r then return nil end
  return {r = tonumber(r), x = tonumber(x), o = o, s = s, k = k, c = c, n = n, f = f, u = u,
          t = t, l = l, d = d}
end
local function write_record(rec)
  redis.call('SET', K.record, ms(rec.r) .. ' ' .. ms(rec.x) .. ' ' .. rec.o .. ' ' .. rec.s
    .. ' ' .. rec.k .. ' ' .. rec.c .. ' ' .. rec.n .. ' ' .. rec.f .. ' ' .. rec.u .. ' '
    .. rec.t .. ' ' .. rec.l .. '|' .. rec.d, 'PX', rec.r - now)
end
-- END and HEARTBEAT: the record of a call still kept, else nil and the reply for one that is
-- not: {0} missing (or another user's, when A.user names one), {1, denial} a denied call id.
local function kept_call()
  local rec = read_record(redis.call('GET', K.record))
  if not rec or rec.r <= now then
    local denial = redis.call('GET', K.denied)
    if denial and denial_until(denial) > now and (A.user == '' or denial_user(denial) == A.user) then
      return nil, {1, denial}
    end
    return nil, {0}
  end
  if A.user ~= '' and rec.u ~= A.user then return nil, {0} end
  return rec
end
