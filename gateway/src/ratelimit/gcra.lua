-- GCRA over every key of one request at once (see gcra.rs, which this mirrors): admits only if
-- every key fits, then advances all of them; with force set, advances them regardless (debt).
-- Time is the server's, so replicas with skewed clocks agree. TATs are microseconds.
--
-- KEYS: the limits' keys.
-- ARGV: window_us, max_ahead_us, force (0|1), then each key's cost in microseconds.
-- Returns: {now_us, admitted (0|1), the TAT each key had before this call (0 if none)}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local window = tonumber(ARGV[1])
local max_ahead = tonumber(ARGV[2])
local force = ARGV[3] == '1'

local stored, afters, pending = {}, {}, {}
local fits = true
for i, key in ipairs(KEYS) do
  stored[i] = tonumber(redis.call('GET', key)) or 0
  -- A key listed twice takes both costs, the second after the first.
  local tat = pending[key] or stored[i]
  local after = math.min(math.max(tat, now) + tonumber(ARGV[3 + i]), now + max_ahead)
  local fit = after - now <= window
  fits = fits and fit
  afters[i] = after
  pending[key] = (fit or force) and after or tat
end

local admitted = fits or force
if admitted then
  for i, key in ipairs(KEYS) do
    -- A key that took nothing is left as it was (a full key stays absent).
    if tonumber(ARGV[3 + i]) > 0 then
      -- The key vanishes when its TAT passes: it is full then, the same as absent.
      local ttl_ms = math.ceil((afters[i] - now) / 1000)
      redis.call('SET', key, string.format('%.0f', afters[i]), 'PX', ttl_ms)
    end
  end
end

local reply = {now, admitted and 1 or 0}
for i = 1, #stored do
  reply[2 + i] = stored[i]
end
return reply
