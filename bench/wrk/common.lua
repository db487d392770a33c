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

-- One parseable line with the tail percentiles wrk --latency does not print (p95); microseconds.
function done(summary, latency, requests)
   io.write(string.format("PERCENTILES_US p50=%d p95=%d p99=%d max=%d\n", latency:percentile(50),
      latency:percentile(95), latency:percentile(99), latency.max))
end
