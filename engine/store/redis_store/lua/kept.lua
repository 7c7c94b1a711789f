-- (After clock.lua and record.lua.)
-- END and HEARTBEAT: the record of a call still kept, else nil and the reply for one that is
-- not: {0} missing (or another user's, when A.user names one), {1, denial} a denied call id.
local function kept_call()
  local rec = get_record()
  if not rec or rec.r <= now then
    local denial = redis.call('GET', K.denied)
    if denial and denial_until(denial) > now
        and (A.user == '' or string.match(denial, '^%d+ %S+ (%S+) ') == A.user) then
      return nil, {1, denial}
    end
    return nil, {0}
  end
  if A.user ~= '' and rec.u ~= A.user then return nil, {0} end
  return rec
end
