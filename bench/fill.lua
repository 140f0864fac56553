-- wrk script for bench/memory.sh: 1 KiB entries spread over TENANTS tenant hosts (t0.mem.test …).
-- MODE=fill asks key START, START+1, … in turn (one wrk thread), wrapping at LIMIT, so every key
-- below LIMIT is asked and none beyond: key n is path /m/(n div TENANTS) of tenant n mod TENANTS.
-- MODE=random asks random keys out of the first LIMIT. Both print exact percentiles like keys.lua.
local tenants = tonumber(os.getenv("TENANTS") or "1000")
local mode = os.getenv("MODE") or "fill"
local start = tonumber(os.getenv("START") or "0")
local limit = tonumber(os.getenv("LIMIT") or "1000")
local counter = 0
-- Each thread its own seed (setup runs once per thread before it starts), or both wrk threads
-- would ask the same sequence of keys.
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("seed", os.time() * 16 + threads)
end
init = function(args)
  math.randomseed(seed or os.time())
end
request = function()
  local n
  if mode == "fill" then
    n = (start + counter) % limit
    counter = counter + 1
  else
    n = math.random(0, limit - 1)
  end
  local tenant = n % tenants
  return wrk.format("GET", "/m/" .. math.floor(n / tenants), { ["Host"] = "t" .. tenant .. ".mem.test" })
end
done = function(summary, latency, requests)
  io.write(string.format("p50_us %d\np99_us %d\np999_us %d\n",
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
