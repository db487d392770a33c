-- (e) Create a tracked user (new username: a new target takes a slot on the least-loaded tracker),
-- then delete it (the target goes, its slot is freed). Ids of created rows are queued from the
-- 201 responses; the next free connection deletes the oldest one, otherwise it creates. So about
-- half the requests are POSTs and half DELETEs, and every delete hits a row that exists.
-- args: KEY FIRST_PERSON LAST_PERSON RUN_TAG
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local first, last, tag
local created = {}
local head, tail = 1, 0
local counter = 0
local unexpected = 0

function build(args)
   wrk.headers["Content-Type"] = "application/json"
   first, last, tag = tonumber(args[2]), tonumber(args[3]), args[4]
end

function next_request()
   if tail >= head then
      local id = created[head]
      created[head] = nil
      head = head + 1
      return wrk.format("DELETE", "/tracked-users/" .. id .. "/")
   end
   counter = counter + 1
   local body = '{"telegram_user_id":' .. math.random(first, last)
      .. ',"username":"b' .. tag .. "_" .. counter .. '"}'
   return wrk.format("POST", "/tracked-users/", nil, body)
end

function response(status, headers, body)
   if status == 201 then
      local id = string.match(body, '"id"%s*:%s*(%d+)')
      if id then
         tail = tail + 1
         created[tail] = id
      end
   elseif status ~= 204 then
      unexpected = unexpected + 1
      if unexpected <= 3 then
         io.stderr:write("unexpected " .. status .. ": " .. body .. "\n")
      end
   end
end
