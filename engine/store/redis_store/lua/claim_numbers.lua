-- CLAIM_NUMBERS: make the account A.account the owner of each name from
-- ARGV[A.numbers_from] on, before its configuration is saved with them: its active numbers
-- and its SIP domain as 'sip:<domain>' (no number starts so). K.owners maps a name to its
-- account; K.mine is the set of the names this account claimed (so that RELEASE_NUMBERS can
-- let go of those it no longer has, even after a save that failed).
-- Returns {1}, or {0, a name another account owns} (and claims nothing).
for i = A.numbers_from, #ARGV do
  local owner = redis.call('HGET', K.owners, ARGV[i])
  if owner and owner ~= A.account then return {0, ARGV[i]} end
end
for i = A.numbers_from, #ARGV do
  redis.call('HSET', K.owners, ARGV[i], A.account)
  redis.call('SADD', K.mine, ARGV[i])
end
return {1}
