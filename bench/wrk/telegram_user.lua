-- (a) GET /telegram-users/{id}/ with random existing ids.
-- args: KEY FIRST_ID LAST_ID
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local first, last

function build(args)
   first, last = tonumber(args[2]), tonumber(args[3])
end

function next_request()
   return wrk.format("GET", "/telegram-users/" .. math.random(first, last) .. "/")
end
