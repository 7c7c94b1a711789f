-- LIVE: one page of the calls holding a channel now, soonest lease expiry first, from
-- position A.start: {'<user>|<call id>', lease expiry, ...}, at most A.most calls. The
-- caller reads their records (caller ID, number) by MGET.
return redis.call('ZRANGEBYSCORE', K.leases, '(' .. now, '+inf', 'WITHSCORES',
  'LIMIT', tonumber(A.start), tonumber(A.most))
