-- wrk script: random keys out of KEYS, body size SIZE, tenant host HOST (all from the environment).
local keys = tonumber(os.getenv("KEYS") or "1000")
local size = os.getenv("SIZE") or "1024"
local host = os.getenv("HOST") or "api.acme.test"
math.randomseed(os.time())
request = function()
  local n = math.random(0, keys - 1)
  return wrk.format("GET", "/v1/blob/" .. n .. "?size=" .. size, { ["Host"] = host })
end
