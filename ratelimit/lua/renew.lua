-- Extends the leases of live requests holding slots of one key. A holder
-- that is no longer in the set (its lease expired while this gateway could
-- not reach Redis) is not re-added: its slot may have been given away.
--
-- KEYS[1]  the key's set of holders
-- ARGV[1]  lease in milliseconds
-- ARGV[2..] the request ids to renew
--
-- Returns how many were renewed.
local lease = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local renewed = 0
for i = 2, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + lease, ARGV[i])
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIRE', KEYS[1], math.max(tonumber(last[2]) - now, 1))
end
return renewed
