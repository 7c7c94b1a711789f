-- Append audit entries to an account's log (a stream), keeping about the newest AUDIT_KEPT.
-- An entry's id counts the account's own entries, not the time: the newest entry's
-- milliseconds with its sequence plus one (Redis numbers "<ms>-*"), so 0-1, 0-2, ... in a
-- new log, and a log begun with time-based ids goes on from its newest. The id is what the
-- account's readers see (and page by): it tells them nothing of other accounts' writes.
-- Only trimming removes entries, and it keeps the newest, so the newest id is the last given.
local function audit(key, entries)
  local newest = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
  local id = (newest and string.match(newest[1], '^%d+') or '0') .. '-*'
  for i = 1, #entries do
    redis.call('XADD', key, 'MAXLEN', '~', AUDIT_KEPT, id, 'e', entries[i])
  end
end
