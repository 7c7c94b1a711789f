-- The clock, shared by every script that reads it (put in front of its file by scripts.py).
-- Time is the Redis server's (TIME), plus A.skew_ms (0 outside tests): one clock for every
-- callgate process, whatever their own clocks say. Lua numbers are doubles, exact for
-- integers below 2^53, and Lua writes a number with 14 significant digits ('%.14g'), so
-- milliseconds since the epoch (13 digits until the year 2286) go into strings and commands
-- as they are, exactly, with no formatting call.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(A.skew_ms)
-- A remembered denial is '<retained until> <fingerprint> <user> <limits>|<answer>'.
local function denial_until(entry)
  return tonumber(string.match(entry, '^(%d+) '))
end
