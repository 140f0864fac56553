-- wrk script: random keys out of KEYS, body size SIZE, tenant host HOST (all from the environment);
-- CLOSE=1 asks for `Connection: close`, so every request comes on a new connection.
local keys = tonumber(os.getenv("KEYS") or "1000")
local size = os.getenv("SIZE") or "1024"
local host = os.getenv("HOST") or "api.acme.test"
local headers = { ["Host"] = host }
if os.getenv("CLOSE") == "1" then headers["Connection"] = "close" end
math.randomseed(os.time())
request = function()
  local n = math.random(0, keys - 1)
  return wrk.format("GET", "/v1/blob/" .. n .. "?size=" .. size, headers)
end
-- Exact percentiles for the report (wrk's --latency table stops at 99 %).
done = function(summary, latency, requests)
  io.write(string.format("p50_us %d\np99_us %d\np999_us %d\n",
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
