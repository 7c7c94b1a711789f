-- Append audit entries to an account's log (a stream), keeping about the newest AUDIT_KEPT.
local function audit(key, entries)
  for i = 1, #entries do
    redis.call('XADD', key, 'MAXLEN', '~', AUDIT_KEPT, '*', 'e', entries[i])
  end
end
