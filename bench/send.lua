-- wrk script for bench/enqueue: POST /api/v1/send with a JSON body whose `to` number
-- differs on every request (per thread: a prefix from the thread's number, then a
-- counter), so nothing can be answered from a cache. The same script drives the daemon
-- and the Express+BullMQ peer.
--   SB_API_KEY   the X-API-Key header (required)
--   SB_SEND_PATH the path (default /api/v1/send)
local key = os.getenv("SB_API_KEY")
if not key then error("send.lua: SB_API_KEY must be set") end
local path = os.getenv("SB_SEND_PATH") or "/api/v1/send"

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local n = 0
local headers = { ["Content-Type"] = "application/json", ["X-API-Key"] = key }
function request()
  n = n + 1
  -- +97250xxxxxxx style: 12 digits, thread number then 7 digits of counter
  local to = string.format("+9725%d%07d", (tid or 0) % 10, n % 10000000)
  local body = string.format('{"to":"%s","message":"Benchmark message %d from thread %d: hello, this is a test of the send path."}',
    to, n, tid or 0)
  return wrk.format("POST", path, headers, body)
end
