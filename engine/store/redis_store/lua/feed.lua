-- FEED: the changes numbered after A.since. Returns {current number, complete, entries...}:
-- complete is 1 when the entries are every change after A.since, 0 when some are no longer
-- kept (or A.since is -1, or the counter went back: Redis lost it) and the caller must
-- compare everything. Each entry is its field list (n, a, v or n, t).
local current = tonumber(redis.call('GET', K.version) or '0')
local since = tonumber(A.since)
if since == current then return {current, 1} end
if since < 0 or since > current or current - since > tonumber(A.most) then
  return {current, 0}
end
local entries = redis.call('XREVRANGE', K.feed, '+', '-', 'COUNT', current - since)
local out = {current, 0}
local expected = current
for i = 1, #entries do
  local fields = entries[i][2]
  if tonumber(fields[2]) ~= expected then return {current, 0} end
  expected = expected - 1
  out[#out + 1] = fields
end
if expected ~= since then return {current, 0} end
out[2] = 1
return out
