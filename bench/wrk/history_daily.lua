-- GET /tracked-users/{id}/daily/?date_from=A&date_to=A+29&tz=Europe/Berlin: 30 days of a random tracked user.
-- args: KEY FIRST_TRACKED LAST_TRACKED FIRST_DAY_EPOCH DAYS
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local first, last, day0, days

function build(args)
   first, last = tonumber(args[2]), tonumber(args[3])
   day0, days = tonumber(args[4]), tonumber(args[5])
end

function next_request()
   local start = day0 + math.random(0, math.max(days - 30, 0)) * 86400
   return wrk.format("GET", "/tracked-users/" .. math.random(first, last) .. "/daily/?date_from="
      .. os.date("!%Y-%m-%d", start) .. "&date_to=" .. os.date("!%Y-%m-%d", start + 29 * 86400)
      .. "&tz=Europe/Berlin")
end
