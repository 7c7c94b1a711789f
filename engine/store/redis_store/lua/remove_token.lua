-- REMOVE_TOKEN: forget a token, and log it. Returns 1 if it was there, else 0 (and logs
-- nothing).
if redis.call('HDEL', K.tokens, A.hash) == 0 then return 0 end
redis.call('HDEL', K.use, A.hash)
audit(K.audit, A.audit_entries)
return 1
