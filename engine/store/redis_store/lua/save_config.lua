-- SAVE_CONFIG: save an account's configuration over the version its writer read, and log
-- the write. Returns {1, new version}, or {0, the version found} when it changed meanwhile.
-- (The change is announced by ANNOUNCE, in the slot of the change feed.)
local version = tonumber(redis.call('HGET', K.config, 'v') or '0')
if version ~= tonumber(A.expected_version) then return {0, version} end
version = version + 1
redis.call('HSET', K.config, 'v', version, 'c', A.config)
audit(K.audit, A.audit_entries)
return {1, version}
