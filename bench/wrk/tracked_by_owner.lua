-- (b) GET /tracked-users/?telegram_user__telegram_id=X (each person follows 10 accounts).
-- args: KEY FIRST_TELEGRAM_ID LAST_TELEGRAM_ID
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local first, last

function build(args)
   first, last = tonumber(args[2]), tonumber(args[3])
end

function next_request()
   return wrk.format("GET", "/tracked-users/?telegram_user__telegram_id=" .. math.random(first, last))
end
