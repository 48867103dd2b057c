-- rampart: one sync of a node's rate-limit counters (rampart_ratelimit::SharedStore).
--
-- KEYS[1]    the fleet's node registry (a sorted set: node -> last sync, ms)
-- KEYS[2..]  one hash per counter: b (base, ms), o (offset, ticks), u (blocked until, ms)
-- ARGV[1]    this node's name
-- ARGV[2]    how long a node counts as live after its last sync, ms
-- ARGV[3..]  per counter: hits, requests_per_period, period_ms, blocked_until_ms
--
-- Returns { now_ms, live_nodes, b, o, u, b, o, u, ... } in KEYS order.
--
-- The theoretical arrival time is b * requests_per_period + o, with 0 <= o <= l * period_ms,
-- so every number stays below 2^53 and is exact in Lua's doubles. The whole script runs
-- atomically on Redis's own clock: no node can interleave between the read and the write.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local out = { now, redis.call('ZCARD', KEYS[1]) }
for i = 2, #KEYS do
  local a = 3 + (i - 2) * 4
  local hits = tonumber(ARGV[a])
  local l = tonumber(ARGV[a + 1])
  local period = tonumber(ARGV[a + 2])
  local blocked = tonumber(ARGV[a + 3])
  local s = redis.call('HMGET', KEYS[i], 'b', 'o', 'u')
  local b = tonumber(s[1]) or now
  local o = tonumber(s[2]) or 0
  local u = tonumber(s[3]) or 0
  if now > b then
    o = math.max(0, o - (now - b) * l)
    b = now
  end
  o = math.min(o + hits * period, l * period)
  if blocked > u then
    u = blocked
  end
  redis.call('HSET', KEYS[i], 'b', b, 'o', o, 'u', u)
  redis.call('PEXPIREAT', KEYS[i], math.max(b + math.ceil(o / l), u) + 1000)
  out[#out + 1] = b
  out[#out + 1] = o
  out[#out + 1] = u
end
return out
