"""The Redis store's scripts. Each runs atomically on the Redis server, as one round trip.

Keys of an account all start with ``cg:{<account id>}:``; the braces are Redis Cluster's hash
tag, so an account's keys live in one slot and every script runs unchanged on a cluster.
Scripts that find a key from a record (the user's lease set, a contact's sticky entry) build
its name from that prefix, so it is in the same slot as the keys they were given.

Time is the Redis server's (``TIME``), plus ``skew`` milliseconds (always 0 outside tests): one
clock for every callgate process, whatever their own clocks say. Lua numbers are doubles, exact
for integers below 2^53; milliseconds since the epoch stay far below that. ``%d`` formats them
where a string is needed (``tostring`` would print 1.8e+12).

A call record is a hash:

=====  ===========================================================================
``f``  fingerprint of the request (a call id reused for another request is refused)
``u``  user id
``d``  the answer, msgpack, without the parts filled in below
``x``  lease expiry (ms); ``0`` when no channel was taken (a denial)
``c``  ``1`` when the call counts against channel limits (``0``: emergency)
``r``  retained until (ms): a retry within this window gets the same answer
``s``  the sticky caller ID the answer took, or empty
``k``  the caller ID to record as sticky if the call connects, or empty
``t``  the contact that sticky entry is for
``l``  how long that sticky entry lasts (ms)
``q``  for a channel-limit denial: ``held,in_account,user_limit,account_limit``
``n``  the attempt's nonce (an unacknowledged admission is undone by it)
``o``  the outcome once ended, or empty
=====  ===========================================================================
"""

from __future__ import annotations

__all__ = [
    "ADD_TOKEN",
    "ADMIT",
    "END",
    "HEARTBEAT",
    "LEASES",
    "LIVE",
    "PEEK",
    "REMOVE_TOKEN",
    "SAVE_CONFIG",
    "UNDO_ADMIT",
]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local function ms(n) return string.format('%d', n) end
local function outlive(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
-- A sticky entry is '<caller id> <expiry ms>'; Redis drops the key at about that time too.
local function sticky_at(key)
  if not key then return nil end
  local entry = redis.call('GET', key)
  if not entry then return nil end
  local caller_id, expires = string.match(entry, '^(%S+) (%d+)$')
  if caller_id and tonumber(expires) > now then return caller_id end
  return nil
end
"""

ADMIT = (
    _NOW
    + """
-- KEYS: record, account leases, user leases[, contact's sticky entry]
-- ARGV: skew, call id, fingerprint, user, remember, counted, user limit, account limit ('' none),
--       lease ttl, retention, sticky ttl, nonce, answer, answer allowed, caller ID to record,
--       contact, sticky answer ('' none), ',id1,id2,' (caller IDs a sticky read may take)
local rec = redis.call('HMGET', KEYS[1], 'r', 'f', 'd', 'x', 's', 'q')
if rec[1] then
  if tonumber(rec[1]) > now then
    -- A retry: it now owns the record, so an undo of an earlier attempt leaves it alone.
    if rec[2] == ARGV[3] then redis.call('HSET', KEYS[1], 'n', ARGV[12]) end
    return {1, rec[2], rec[3], tonumber(rec[4]), rec[5], rec[6]}
  end
  redis.call('DEL', KEYS[1])
end
local answer, allowed, sticky, keep = ARGV[13], ARGV[14] == '1', '', ARGV[15]
local found = sticky_at(KEYS[4])
if found and string.find(ARGV[18], ',' .. found .. ',', 1, true) then
  answer, allowed, sticky, keep = ARGV[17], true, found, found
end
local expires, refusal = 0, ''
if allowed then
  local ttl = tonumber(ARGV[9])
  expires = now + ttl
  if ARGV[6] == '1' then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    local held = redis.call('ZCARD', KEYS[3])
    local in_account = redis.call('ZCARD', KEYS[2])
    local cap = tonumber(ARGV[8])
    if held >= tonumber(ARGV[7]) or (cap and in_account >= cap) then
      allowed, expires = false, 0
      refusal = held .. ',' .. in_account .. ',' .. ARGV[7] .. ',' .. ARGV[8]
    else
      redis.call('ZADD', KEYS[3], expires, ARGV[2])
      redis.call('ZADD', KEYS[2], expires, ARGV[2])
      outlive(KEYS[3], ttl)
      outlive(KEYS[2], ttl)
    end
  end
end
if not allowed and ARGV[5] ~= '1' then
  return {0, 0, 0, sticky, refusal}
end
local retain = (allowed and expires or now) + tonumber(ARGV[10])
redis.call('HSET', KEYS[1], 'f', ARGV[3], 'u', ARGV[4], 'd', answer, 'x', ms(expires),
  'c', ARGV[6], 'r', ms(retain), 's', sticky, 'k', allowed and keep or '', 't', ARGV[16],
  'l', ARGV[11], 'q', refusal, 'n', ARGV[12], 'o', '')
redis.call('PEXPIRE', KEYS[1], retain - now)
return {0, allowed and 1 or 0, expires, sticky, refusal}
"""
)

UNDO_ADMIT = """
-- KEYS: record, account leases, user leases.  ARGV: call id, nonce
-- Undo an admission whose answer nobody received, unless something has changed it since.
local rec = redis.call('HMGET', KEYS[1], 'n', 'o')
if rec[1] ~= ARGV[2] or rec[2] ~= '' then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""

END = (
    _NOW
    + """
-- KEYS: record, account leases.
-- ARGV: skew, call id, outcome, connected, retention, prefix, user ('' any: whose call it is)
local rec = redis.call('HMGET', KEYS[1], 'r', 'x', 'o', 'u', 'k', 't', 'l', 'd')
if not rec[1] or tonumber(rec[1]) <= now then return {'missing'} end
if ARGV[7] ~= '' and rec[4] ~= ARGV[7] then return {'missing'} end
if rec[2] == '0' then return {'denied', rec[8]} end
local records = rec[5] ~= '' and rec[6] ~= ''
if rec[3] ~= '' then return {'ended', rec[3], records and 1 or 0} end
local retain = now + tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 'o', ARGV[3], 'r', ms(retain))
redis.call('PEXPIRE', KEYS[1], retain - now)
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', ARGV[6] .. 'u:' .. rec[4], ARGV[2])
if records and ARGV[4] == '1' then
  local ttl = tonumber(rec[7])
  redis.call('SET', ARGV[6] .. 'st:' .. rec[6], rec[5] .. ' ' .. ms(now + ttl), 'PX', ttl)
end
return {'ok', records and 1 or 0}
"""
)

HEARTBEAT = (
    _NOW
    + """
-- KEYS: record, account leases.
-- ARGV: skew, call id, lease ttl, retention, prefix, user ('' any: whose call it is)
local rec = redis.call('HMGET', KEYS[1], 'r', 'x', 'o', 'u', 'c', 'd')
if not rec[1] or tonumber(rec[1]) <= now then return {'missing'} end
if ARGV[6] ~= '' and rec[4] ~= ARGV[6] then return {'missing'} end
if rec[2] == '0' then return {'denied', rec[6]} end
if rec[3] ~= '' then return {'ended', rec[3]} end
if tonumber(rec[2]) <= now then return {'expired'} end
local ttl = tonumber(ARGV[3])
local expires = now + ttl
local retain = expires + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'x', ms(expires), 'r', ms(retain))
redis.call('PEXPIRE', KEYS[1], retain - now)
if rec[5] == '1' then
  local user = ARGV[5] .. 'u:' .. rec[4]
  redis.call('ZADD', KEYS[2], 'XX', expires, ARGV[2])
  redis.call('ZADD', user, 'XX', expires, ARGV[2])
  outlive(KEYS[2], ttl)
  outlive(user, ttl)
end
return {'ok', expires}
"""
)

PEEK = (
    _NOW
    + """
-- KEYS: record, account leases, user leases[, contact's sticky entry].  ARGV: skew, remember
-- Read-only: the answer already given (if any), the sticky entry and the leases held now.
local known = {'', '', 0, '', ''}
if ARGV[2] == '1' then
  local rec = redis.call('HMGET', KEYS[1], 'r', 'f', 'd', 'x', 's', 'q')
  if rec[1] and tonumber(rec[1]) > now then
    known = {rec[2], rec[3], tonumber(rec[4]), rec[5], rec[6]}
  end
end
local sticky = sticky_at(KEYS[4]) or ''
local after = '(' .. ms(now)
return {redis.call('ZCOUNT', KEYS[3], after, '+inf'), redis.call('ZCOUNT', KEYS[2], after, '+inf'),
  sticky, known[1], known[2], known[3], known[4], known[5]}
"""
)

LEASES = (
    _NOW
    + """
-- KEYS: account leases.  ARGV: skew.  The leases held now.
return redis.call('ZCOUNT', KEYS[1], '(' .. ms(now), '+inf')
"""
)

LIVE = (
    _NOW
    + """
-- KEYS: account leases.  ARGV: skew, prefix, most.
-- The calls holding a channel now: call id, lease expiry, user, answer (msgpack) for each.
local held = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ms(now), '+inf', 'WITHSCORES',
  'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for i = 1, #held, 2 do
  local rec = redis.call('HMGET', ARGV[2] .. 'call:' .. held[i], 'u', 'd')
  if rec[1] then
    table.insert(out, held[i])
    table.insert(out, held[i + 1])
    table.insert(out, rec[1])
    table.insert(out, rec[2])
  end
end
return out
"""
)

_AUDIT = """
-- Append audit entries (ARGV[first..]) to the stream KEYS[key], keeping about the newest
-- AUDIT_KEPT entries.
local function audit(key, first)
  for i = first, #ARGV do
    redis.call('XADD', KEYS[key], 'MAXLEN', '~', '%d', '*', 'e', ARGV[i])
  end
end
"""

AUDIT_KEPT = 100_000
"""Entries of an account's audit log Redis keeps (about: the stream is trimmed in blocks)."""

SAVE_CONFIG = (
    _AUDIT % AUDIT_KEPT
    + """
-- KEYS: the account's configuration, its audit log.
-- ARGV: expected version, configuration, channel, account, audit entries...
-- Saves only over the version the writer read, logs the write, and tells every process of
-- the new version.
local version = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if version ~= tonumber(ARGV[1]) then return {0, version} end
version = version + 1
redis.call('HSET', KEYS[1], 'v', version, 'c', ARGV[2])
audit(2, 5)
redis.call('PUBLISH', ARGV[3], ARGV[4] .. ' ' .. version)
return {1, version}
"""
)

ADD_TOKEN = (
    _AUDIT % AUDIT_KEPT
    + """
-- KEYS: the account's tokens, its audit log.  ARGV: hash, record, audit entries...
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
audit(2, 3)
return 1
"""
)

REMOVE_TOKEN = (
    _AUDIT % AUDIT_KEPT
    + """
-- KEYS: the account's tokens, its audit log.  ARGV: hash, audit entries...
-- 1 if the token was there (and the entries are logged), else 0.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
audit(2, 2)
return 1
"""
)
