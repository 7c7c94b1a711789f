-- RELEASE_NUMBERS: settle an account's claims on what its stored configuration holds: the
-- account A.account keeps the names (numbers, 'sip:<domain>') from ARGV[A.numbers_from] on
-- (claimed again if a concurrent save of the same account let one go meanwhile) and lets go
-- of every other name it claimed (numbers removed or released from its configuration, a
-- domain changed or removed, and those of a save that failed). Returns how many it let go of.
local keep = {}
for i = A.numbers_from, #ARGV do
  keep[ARGV[i]] = true
  if not redis.call('HGET', K.owners, ARGV[i]) then
    redis.call('HSET', K.owners, ARGV[i], A.account)
    redis.call('SADD', K.mine, ARGV[i])
  end
end
local released = 0
for _, number in ipairs(redis.call('SMEMBERS', K.mine)) do
  if not keep[number] then
    if redis.call('HGET', K.owners, number) == A.account then
      redis.call('HDEL', K.owners, number)
    end
    redis.call('SREM', K.mine, number)
    released = released + 1
  end
end
return released
