-- rampart: one sync of a node's rate-limit counters (rampart_ratelimit::SharedStore).
--
-- KEYS[1]    the fleet's node registry (a sorted set: node -> last sync, ms)
-- KEYS[2..]  one hash per counter: b (base), o (offset), u (blocked until, ms)
-- ARGV[1]    this node's name
-- ARGV[2]    how long a node counts as live after its last sync, ms
-- ARGV[3..]  per counter: hits, requests_per_period, period_ms, blocked_until_ms, width
--            (width 0: GCRA; otherwise a sliding window with counters of that many bits)
--
-- Returns { now_ms, live_nodes, b, o, u, b, o, u, ... } in KEYS order.
--
-- GCRA: the theoretical arrival time is b * requests_per_period + o, b in ms and
-- 0 <= o <= l * period_ms. Sliding window: b is the current sub-window's index and o the
-- counters packed w bits each, the current one lowest (rampart_ratelimit's window module).
-- Every number stays below 2^53 and is exact in Lua's doubles; shifts are multiplications
-- by powers of two and math.fmod, both exact. The whole script runs atomically on Redis's
-- own clock: no node can interleave between the read and the write.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local out = { now, redis.call('ZCARD', KEYS[1]) }
for i = 2, #KEYS do
  local a = 3 + (i - 2) * 5
  local hits = tonumber(ARGV[a])
  local l = tonumber(ARGV[a + 1])
  local period = tonumber(ARGV[a + 2])
  local blocked = tonumber(ARGV[a + 3])
  local w = tonumber(ARGV[a + 4])
  local s = redis.call('HMGET', KEYS[i], 'b', 'o', 'u')
  local b, o, expires
  local u = tonumber(s[3]) or 0
  if w == 0 then
    b = tonumber(s[1]) or now
    o = tonumber(s[2]) or 0
    if now > b then
      o = math.max(0, o - (now - b) * l)
      b = now
    end
    o = math.min(o + hits * period, l * period)
    expires = b + math.ceil(o / l)
  else
    local counters = math.floor(48 / w)
    local k = counters - 1
    local index = math.floor(now * k / period)
    b = tonumber(s[1]) or index
    o = tonumber(s[2]) or 0
    if index > b then
      if index - b >= counters then
        o = 0
      else
        o = math.fmod(o * 2 ^ ((index - b) * w), 2 ^ (counters * w))
      end
      b = index
    end
    local sum, rest = 0, o
    for _ = 1, counters do
      sum = sum + math.fmod(rest, 2 ^ w)
      rest = math.floor(rest / 2 ^ w)
    end
    o = o + math.max(0, math.min(hits, l - sum))
    -- Every counter has left the window once sub-window b + counters starts.
    expires = math.ceil((b + counters) * period / k)
  end
  if blocked > u then
    u = blocked
  end
  redis.call('HSET', KEYS[i], 'b', b, 'o', o, 'u', u)
  redis.call('PEXPIREAT', KEYS[i], math.max(expires, u) + 1000)
  out[#out + 1] = b
  out[#out + 1] = o
  out[#out + 1] = u
end
return out
