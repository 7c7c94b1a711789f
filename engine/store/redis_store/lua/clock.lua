-- The clock, shared by every script that reads it (put in front of its file by scripts.py).
-- Time is the Redis server's (TIME), plus A.skew_ms (0 outside tests): one clock for every
-- callgate process, whatever their own clocks say. Lua numbers are doubles, exact for
-- integers below 2^53; ms since the epoch stay far below that. ms() formats them where a
-- string is needed (tostring would print 1.8e+12).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(A.skew_ms)
local function ms(n) return string.format('%d', n) end
local function outlive(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
-- A remembered denial is '<retained until> <fingerprint> <user> <limits>|<answer>'.
local function denial_until(entry)
  return tonumber(string.match(entry, '^(%d+) '))
end
local function denial_user(entry)
  return string.match(entry, '^%d+ %S+ (%S+) ')
end
