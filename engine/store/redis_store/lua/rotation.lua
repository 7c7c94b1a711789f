-- Rotation and daily caps (callerid/rotation.py), shared by ADMIT and SEND_TEXT (put in front
-- of their files by scripts.py). A.cap is the account's daily cap per number ('' or nil: none)
-- and A.caps the numbers with a cap of their own, ',<number>=<cap>,...'; A.steps the
-- rotation, '<rule> <number> <number>...;' per step, in order.
-- A number's daily cap ('+' is the only magic character an E.164 number holds).
local function cap_of(number)
  local own = A.caps and string.match(A.caps, ',%' .. number .. '=(%d+),')
  return tonumber(own or A.cap)
end
-- The first step with a number under its cap, counted in the hash `counted`: the least used
-- of its numbers (the first on a tie) and the step's rule; nil when every one is capped.
local function rotate(counted)
  for name, list in string.gmatch(A.steps, '(%S+) ([^;]+);') do
    local numbers = {}
    for number in string.gmatch(list, '%S+') do numbers[#numbers + 1] = number end
    local used = redis.call('HMGET', counted, unpack(numbers))
    local best, fewest
    for i, number in ipairs(numbers) do
      local count = tonumber(used[i] or '0')
      local cap = cap_of(number)
      if (not best or count < fewest) and (not cap or count < cap) then
        best, fewest = number, count
      end
    end
    if best then return best, name end
  end
  return nil
end
