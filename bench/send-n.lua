-- wrk script for bench/dispatch: exactly SB_SEND_N accepted POST /api/v1/send in all
-- (SB_SEND_N / threads per thread; a thread stops once its share has answered 202),
-- each to a different `to` number; with SB_SESSIONS=S each names its session,
-- worker_1 .. worker_S round-robin over the whole run. Requests past a thread's share,
-- while its last ones are still in flight, are a harmless GET /health.
--   SB_API_KEY, SB_SEND_N (required), SB_THREADS (wrk's -t, default 2), SB_SESSIONS (0: none named)
local key = os.getenv("SB_API_KEY")
local total = tonumber(os.getenv("SB_SEND_N") or "")
if not key or not total then error("send-n.lua: SB_API_KEY and SB_SEND_N must be set") end
local nthreads = tonumber(os.getenv("SB_THREADS") or "2")
local nsessions = tonumber(os.getenv("SB_SESSIONS") or "0")

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local sent, accepted, refused = 0, 0, 0
local share
local headers = { ["Content-Type"] = "application/json", ["X-API-Key"] = key }
local health
function init(args)
  share = math.floor(total / nthreads)
  if tid == nthreads then share = total - share * (nthreads - 1) end
  health = wrk.format("GET", "/health")
end

-- wrk calls request() once in thread 1 before the run, only to check the script (see
-- script_verify_request in wrk.c): that request is never sent, so it must not count
local verified = false
function request()
  if tid == 1 and not verified then
    verified = true
    return health
  end
  if sent >= share then return health end
  sent = sent + 1
  local idx = (sent - 1) * nthreads + (tid - 1) -- 0 .. total-1 over all threads
  local sess = ""
  if nsessions > 0 then sess = string.format(',"sessionId":"worker_%d"', idx % nsessions + 1) end
  local body = string.format('{"to":"+9725%08d","message":"Benchmark message %d: hello, this is a test of the send path."%s}',
    idx % 100000000, idx, sess)
  return wrk.format("POST", "/api/v1/send", headers, body)
end

-- past its share a thread only waits for its last answers: no need to hammer /health
function delay()
  if sent >= share then return 20 end
  return 0
end

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
    if accepted >= share then wrk.thread:stop() end
  elseif status ~= 200 then
    refused = refused + 1
    if refused <= 3 then io.stderr:write("send-n.lua: answer " .. status .. ": " .. body .. "\n") end
  end
end
