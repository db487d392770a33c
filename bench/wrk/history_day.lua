-- GET /tracked-users/{id}/<PATH>/?date=D&tz=Europe/Berlin for a random tracked user and day (timeline, chart).
-- args: KEY FIRST_TRACKED LAST_TRACKED FIRST_DAY_EPOCH DAYS PATH [EXTRA_QUERY]
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local first, last, day0, days, path, extra

function build(args)
   first, last = tonumber(args[2]), tonumber(args[3])
   day0, days, path, extra = tonumber(args[4]), tonumber(args[5]), args[6], args[7] or ""
end

function next_request()
   local day = os.date("!%Y-%m-%d", day0 + math.random(0, days - 1) * 86400)
   return wrk.format("GET", "/tracked-users/" .. math.random(first, last) .. "/" .. path
      .. "/?date=" .. day .. "&tz=Europe/Berlin" .. extra)
end
