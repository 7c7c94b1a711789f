-- ANNOUNCE: tell every process of a change: numbered in K.version, kept in the stream
-- K.feed (the newest ~A.kept entries) for processes that poll, and published on A.channel
-- for those listening. A.kind is 'a' (A.subject an account id, A.value its new version) or
-- 't' (A.subject a revoked token's hash). Returns the change's number.
local n = redis.call('INCR', K.version)
if A.kind == 'a' then
  redis.call('XADD', K.feed, 'MAXLEN', '~', A.kept, '*', 'n', n, 'a', A.subject, 'v', A.value)
  redis.call('PUBLISH', A.channel, A.subject .. ' ' .. A.value)
else
  redis.call('XADD', K.feed, 'MAXLEN', '~', A.kept, '*', 'n', n, 't', A.subject)
  redis.call('PUBLISH', A.channel, '-token ' .. A.subject)
end
return n
