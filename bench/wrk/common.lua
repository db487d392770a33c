-- Shared by every scenario script: wrk.lua scripts receive "-- KEY ARG..." after the URL.
-- Each scenario script sets `build(args)` (called once) and `next_request()` (called per request).
api_key = nil

function init(args)
   api_key = args[1]
   wrk.headers["X-API-Key"] = api_key
   wrk.headers["Accept"] = "application/json"
   math.randomseed(os.time())
   build(args)
end

function request()
   return next_request()
end
