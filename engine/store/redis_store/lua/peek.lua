-- PEEK (explain): what a dial would find, changing nothing a caller can see (expired leases
-- are given back, as any script would).
-- Returns {the user's calls, the account's calls, sticky caller ID or '', kind, ...}: kind 0
-- nothing known; 1 the record of an allowed call: f, d, x, s, c; 2 a remembered denial.
purge()
local held = tonumber(redis.call('HGET', K.counts, A.user) or '0')
local in_account = redis.call('ZCARD', K.leases)
local sticky = ''
if A.contact ~= '' then
  local entry = redis.call('HGET', K.sticky, A.contact)
  if entry then
    local caller, expires = string.match(entry, '^(%S+) (%d+)$')
    if caller and tonumber(expires) > now then sticky = caller end
  end
end
if A.remember == '1' then
  local rec = get_record()
  if rec and rec.r > now then
    return {held, in_account, sticky, 1, rec.f, rec.d, rec.x, rec.s, rec.c}
  end
  local denial = redis.call('GET', K.denied)
  if denial and denial_until(denial) > now then
    return {held, in_account, sticky, 2, denial}
  end
end
return {held, in_account, sticky, 0}
