-- Takes one concurrency slot for one key. The key is a sorted set of the
-- holders' request ids scored by lease expiry (milliseconds of Redis's
-- clock): expired holders (a gateway that crashed) are dropped first, so a
-- dead gateway's slots come back within one lease.
--
-- KEYS[1]  the key's set of holders
-- ARGV[1]  max holders
-- ARGV[2]  lease in milliseconds
-- ARGV[3]  this request's id (unique across the fleet)
--
-- Returns {acquired (1|0), holders after the call, milliseconds until the
-- earliest lease expires (0 when acquired)}.
local max = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n >= max then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = 0
  if first[2] then
    wait = tonumber(first[2]) - now
  end
  return {0, n, wait}
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
-- The set lives as long as its longest lease (a reload may have shortened
-- the lease, so not simply this one).
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(last[2]) - now, 1))
return {1, n + 1, 0}
