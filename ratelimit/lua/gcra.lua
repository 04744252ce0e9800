-- One rate-limit decision for one key, as GCRA (the generic cell rate
-- algorithm): the same admissions as a token bucket of `burst` tokens
-- refilled at one token per `interval`, kept as a single number, the
-- key's theoretical arrival time (TAT), in microseconds of Redis's clock.
-- Redis's clock, not the gateways', so a fleet with skewed clocks agrees.
--
-- KEYS[1]  the bucket's key
-- ARGV[1]  interval: microseconds per token (1e6 / rate), may be fractional
-- ARGV[2]  burst: the bucket size in tokens
-- ARGV[3]  idle: milliseconds a full bucket's key is kept after its last use
--
-- Returns {allowed (1|0), remaining tokens, microseconds until the bucket is
-- full, microseconds until one token is available (0 when allowed)}.
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local idle = tonumber(ARGV[3])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now
if tat < now then
  tat = now
end
local tolerance = burst * interval
local next_tat = tat + interval
local allow_at = next_tat - tolerance
if now < allow_at then
  return {0, 0, math.ceil(tat - now), math.ceil(allow_at - now)}
end

-- The key may vanish only once the bucket would be full again, so expiry
-- never hands a client tokens it would not have had.
local ttl = math.ceil((next_tat - now) / 1000)
if ttl < idle then
  ttl = idle
end
-- %.17g round-trips a double exactly; tostring would keep 14 digits and
-- drift by up to a hundred microseconds at today's epoch.
redis.call('SET', KEYS[1], string.format('%.17g', next_tat), 'PX', ttl)
local remaining = math.floor((tolerance - (next_tat - now)) / interval + 1e-9)
return {1, remaining, math.ceil(next_tat - now), 0}
