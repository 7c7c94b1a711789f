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
-- The record under K.record, or nil; a key of another type (a hash an older callgate left)
-- reads as none, and the next SET replaces it.
local function get_record()
  local text = redis.pcall('GET', K.record)
  if type(text) ~= 'string' then return nil end
  local r, x, o, s, k, c, n, f, u, t, l, d = string.match(text,
    '^(%d+) (%d+) (%S*) (%S*) (%S*) ([01]) (%S+) (%S+) (%S+) (%S*) (%d+)|(.*)$')
  if not r then return nil end
  return {r = tonumber(r), x = tonumber(x), o = o, s = s, k = k, c = c, n = n, f = f, u = u,
          t = t, l = l, d = d}
end
local function write_record(rec)
  redis.call('SET', K.record, string.format('%d %d ', rec.r, rec.x) .. rec.o .. ' ' .. rec.s
    .. ' ' .. rec.k .. ' ' .. rec.c .. ' ' .. rec.n .. ' ' .. rec.f .. ' ' .. rec.u .. ' '
    .. rec.t .. ' ' .. rec.l .. '|' .. rec.d, 'PX', string.format('%d', rec.r - now))
end
