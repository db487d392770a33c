-- (d) POST /online-statuses/ for random tracked users (server time).
-- args: KEY FIRST_TRACKED LAST_TRACKED
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local first, last
local online = false

function build(args)
   wrk.headers["Content-Type"] = "application/json"
   first, last = tonumber(args[2]), tonumber(args[3])
end

function next_request()
   online = not online
   local body = '{"tracked_user_id":' .. math.random(first, last) .. ',"is_online":' .. tostring(online) .. '}'
   return wrk.format("POST", "/online-statuses/", nil, body)
end
