-- DNC_REMOVE: take numbers off an account's do-not-call list; as DNC_ADD.
-- Returns how many of the numbers were listed.
local removed = 0
local first = A.numbers_from - 3
for i = 3, #KEYS do
  removed = removed + redis.call('SREM', KEYS[i], ARGV[first + i])
end
if removed ~= 0 then
  if redis.call('DECRBY', K.listed, removed) <= 0 then redis.call('DEL', K.listed) end
end
if A.audit ~= '' then audit(K.audit, {A.audit}) end
return removed
