-- The clock, shared by every script that reads it (put in front of its file by scripts.py).
-- Time is the Redis server's (TIME), plus A.skew_ms (0 outside tests): one clock for every
-- callgate process, whatever their own clocks say. Lua numbers are doubles, exact for
-- integers below 2^53, and Lua writes a number with 14 significant digits ('%.14g'), so
-- milliseconds since the epoch (13 digits until the year 2286) are exact. Writing a number
-- (a concatenation, or a number handed to redis.call) goes through the C library's '%.14g',
-- the costliest step of a dial's script after the commands themselves: a number a script
-- writes goes through string.format('%d', n), which takes the integer path, and constant
-- arguments are written as strings ('1'). RETENTION_MS is a constant of the source.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if A.skew_ms ~= '0' then now = now + tonumber(A.skew_ms) end
-- A remembered denial is '<retained until> <fingerprint> <user> <limits>|<answer>'.
local function denial_until(entry)
  return tonumber(string.match(entry, '^(%d+) '))
end
