-- wrk script for the open-loop rows: keys.lua's requests and percentiles (random keys, SIZE, HOST),
-- but each request leaves on a fixed schedule of RATE requests/s over all of wrk's threads (THREADS,
-- default 2) instead of as soon as the last answer came. Each thread keeps one schedule for its
-- connections; a request due while every connection waits leaves as soon as one is free, so a
-- system that falls behind is sent a burst to catch up (and the achieved rate shows that it fell
-- behind). wrk times each request from when it left, not from when it was due, so queueing inside
-- wrk is not counted. wrk's delay() takes whole milliseconds, so the schedule holds to the millisecond.
dofile("bench/keys.lua")

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } paced_timespec;
  int clock_gettime(int clock, paced_timespec *now);
]]
local clock = ffi.new("paced_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local rate = tonumber(os.getenv("RATE") or "1000")
local threads = tonumber(os.getenv("THREADS") or "2")
local interval = 1000 * threads / rate  -- milliseconds between this thread's requests
local due = nil

-- Each thread its own seed, or both would ask the same keys in the same order.
init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
end

delay = function()
  local now = now_ms()
  due = (due or now) + interval
  local wait = due - now
  if wait < 0 then return 0 end
  return wait
end
