-- DNC_ADD: put numbers on an account's do-not-call list (engine/store/dnc.py). KEYS from
-- the third on are the numbers' sets, ARGV from A.numbers_from on their members, in the same
-- order; K.listed counts the numbers listed. A.audit, unless '', is logged with the write.
-- Returns how many of the numbers were not listed before.
local added = 0
local first = A.numbers_from - 3
for i = 3, #KEYS do
  added = added + redis.call('SADD', KEYS[i], ARGV[first + i])
end
if added ~= 0 then redis.call('INCRBY', K.listed, added) end
if A.audit ~= '' then audit(K.audit, {A.audit}) end
return added
