-- (c) GET /online-statuses/?tracked_user_id=X&created_at_after=A&created_at_before=B: a window of
-- 10 rounds of the seeded 6-hourly log, so exactly 10 rows.
-- args: KEY FIRST_TRACKED LAST_TRACKED START_EPOCH STEP_SECONDS ROUNDS
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local first, last, start, step, rounds

function build(args)
   first, last = tonumber(args[2]), tonumber(args[3])
   start, step, rounds = tonumber(args[4]), tonumber(args[5]), tonumber(args[6])
end

local function iso(epoch)
   return os.date("!%Y-%m-%dT%H:%M:%SZ", epoch)
end

function next_request()
   local k = math.random(0, rounds - 10)
   local after = start + k * step
   local before = after + 10 * step - 1
   return wrk.format("GET", "/online-statuses/?tracked_user_id=" .. math.random(first, last)
      .. "&created_at_after=" .. iso(after) .. "&created_at_before=" .. iso(before))
end
