-- ADD_TOKEN: store a token's record under its hash, and log it. Returns 1.
redis.call('HSET', K.tokens, A.hash, A.record)
audit(K.audit, A.audit_entries)
return 1
