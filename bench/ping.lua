-- wrk script for bench/ingest: every request is the same signed worker PING event.
-- The body and the signature headers are made by bench/ingest (the signature covers
-- "<X-Timestamp>.<body>" and the timestamp stays valid for 300 s, which outlasts the run):
--   SB_PING_BODY   the raw JSON body
--   SB_PING_TS     X-Timestamp (unix seconds)
--   SB_PING_SIG    X-Signature ("sha256=<hex>")
local body = os.getenv("SB_PING_BODY")
local ts = os.getenv("SB_PING_TS")
local sig = os.getenv("SB_PING_SIG")
if not body or not ts or not sig then
  error("ping.lua: SB_PING_BODY, SB_PING_TS and SB_PING_SIG must be set")
end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Timestamp"] = ts
wrk.headers["X-Signature"] = sig
