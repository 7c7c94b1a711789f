-- LIVE: one page of the calls holding a channel now, soonest lease expiry first, from
-- position A.start: {call id, lease expiry, 'user|caller ID|to', ...}. At most A.most
-- calls a page, so no call of it runs more than two commands.
local held = redis.call('ZRANGEBYSCORE', K.leases, '(' .. ms(now), '+inf', 'WITHSCORES',
  'LIMIT', tonumber(A.start), tonumber(A.most))
if #held == 0 then return {} end
local ids = {}
for i = 1, #held, 2 do ids[#ids + 1] = held[i] end
local holders = redis.call('HMGET', K.holders, unpack(ids))
local out = {}
for i = 1, #ids do
  out[#out + 1] = ids[i]
  out[#out + 1] = held[2 * i]
  out[#out + 1] = holders[i] or ''
end
return out
