//! The Lua scripts: each is one atomic step in Redis, so nodes counting at the same time
//! never lose a count.

use redis::Script;

/// Counts a failure per key with the semantics of core's
/// [`FailureLimiter`](gatehouse_core::throttle::FailureLimiter): a fixed window of `per`
/// seconds; the `max`-th failure locks the key for `per` seconds; a lock within a day of the
/// previous one doubles, up to a day. A key that is locked already counts nothing. A fresh
/// lock is published on the event channel in the same step.
///
/// `ARGV[1..3]` = now, longest lock, channel; then per key: max, per, kind, id (for the
/// event). Returns per key: locked until (unix seconds, 0 if never), 1 if this call locked.
const FAILURE: &str = r"
local now = tonumber(ARGV[1])
local maxlock = tonumber(ARGV[2])
local channel = ARGV[3]
local out = {}
for i, key in ipairs(KEYS) do
  local base = 3 + (i - 1) * 4
  local max = tonumber(ARGV[base + 1])
  local per = tonumber(ARGV[base + 2])
  local h = redis.call('HMGET', key, 'ws', 'c', 'lu', 's', 'll')
  local ws = tonumber(h[1]) or now
  local c = tonumber(h[2]) or 0
  local lu = tonumber(h[3]) or 0
  local s = tonumber(h[4]) or 0
  local ll = tonumber(h[5])
  local fresh = 0
  if lu <= now then
    if now >= ws + per then
      ws = now
      c = 0
    end
    c = c + 1
    if c >= max then
      if ll == nil or now - ll > maxlock then
        s = 0
      end
      local lock = math.min(per * math.pow(2, math.min(s, 20)), maxlock)
      s = s + 1
      ll = now
      lu = now + lock
      c = 0
      ws = now
      fresh = 1
    end
    local keep = math.max(ws + per - now, lu - now, 1)
    if ll ~= nil then
      keep = math.max(keep, ll + maxlock - now)
      redis.call('HSET', key, 'ws', ws, 'c', c, 'lu', lu, 's', s, 'll', ll)
    else
      redis.call('HSET', key, 'ws', ws, 'c', c, 'lu', lu, 's', s)
    end
    redis.call('EXPIRE', key, math.floor(keep))
    if fresh == 1 then
      redis.call('PUBLISH', channel, cjson.encode({t = 'lock', kind = ARGV[base + 3], key = ARGV[base + 4], ['until'] = lu}))
    end
  end
  out[#out + 1] = lu
  out[#out + 1] = fresh
end
return out
";

/// A fixed-window request counter: INCR, and the window's expiry set by its first request.
/// `ARGV[1]` = window, ms. Returns {count, ms until the window resets}.
const QUOTA: &str = r"
local c = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {c, ttl}
";

/// Digest `nc` replay protection (RFC 7616 §3.4): advance the highest count seen for a nonce
/// only if the new one is greater. `ARGV` = nc, seconds to keep. Returns 1 if advanced.
const NONCE: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local nc = tonumber(ARGV[1])
if nc <= cur then
  return 0
end
redis.call('SET', KEYS[1], nc, 'EX', ARGV[2])
return 1
";

pub(super) struct Scripts {
    pub failure: Script,
    pub quota: Script,
    pub nonce: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            failure: Script::new(FAILURE),
            quota: Script::new(QUOTA),
            nonce: Script::new(NONCE),
        }
    }
}
