-- wrk script for the geo benchmark: one cached path of HOST, each request from a client address
-- told in X-Forwarded-For: out of ADDRESSES fixed random addresses (repeating clients), or a new
-- random address every request when ADDRESSES is 0.
local n = tonumber(os.getenv("ADDRESSES") or "0")
local host = os.getenv("HOST") or "api.acme.test"
local target = os.getenv("TARGET") or "/v1/blob/1?size=1024"
math.randomseed(7)
local function random_ip()
  return string.format("%d.%d.%d.%d", math.random(1, 223), math.random(0, 255), math.random(0, 255), math.random(1, 254))
end
local set = {}
for i = 1, n do set[i] = random_ip() end
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
request = function()
  local ip = n > 0 and set[math.random(1, n)] or random_ip()
  return wrk.format("GET", target, { ["Host"] = host, ["X-Forwarded-For"] = ip })
end
