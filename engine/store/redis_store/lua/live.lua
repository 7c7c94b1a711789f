-- LIVE: one page of the calls holding a channel now, soonest lease expiry first:
-- {'<user>|<call id>', lease expiry, ...}, at most A.most calls. The first page (A.after '')
-- starts after now; each next one at the lease expiry A.after the one before ended at,
-- skipping the A.skip calls of that expiry it listed already. So a page costs the same
-- however deep it is (an offset from the start would cost more with every page). The caller
-- reads the calls' records (caller ID, number) by MGET.
local min = A.after == '' and ('(' .. now) or A.after
return redis.call('ZRANGEBYSCORE', K.leases, min, '+inf', 'WITHSCORES',
  'LIMIT', tonumber(A.skip), tonumber(A.most))
