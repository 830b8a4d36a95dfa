-- wrk script for `make bench`: POSTs a JSON-RPC tools/call with a unique id per request.
--
-- Environment (read once per wrk thread):
--   BENCH_MODE         filter (default): ~1 KB call of a 12-argument tool
--                      bridge: tools/call of the echo tool {message}
--   BENCH_PATH         request path (default /mcp)
--   BENCH_AUTH_HEADER  header carrying the credential (e.g. Authorization, X-API-Key)
--   BENCH_AUTH_FILE    file with one credential per line, cycled per request (one line: the
--                      same credential every time)
--   BENCH_SESSION      Mcp-Session-Id to send (bridges: one pre-opened session)
--   BENCH_PROTO        MCP-Protocol-Version header (default 2025-06-18)
--   BENCH_CHECK        1: count 200 responses without "result" or with "isError":true as bad
--
-- done() prints one line `BENCH_JSON {...}` that bench/run.py parses.

local mode = os.getenv("BENCH_MODE") or "filter"
local path = os.getenv("BENCH_PATH") or "/mcp"
local auth_header = os.getenv("BENCH_AUTH_HEADER")
local auth_file = os.getenv("BENCH_AUTH_FILE")
local session = os.getenv("BENCH_SESSION")
local proto = os.getenv("BENCH_PROTO") or "2025-06-18"
local check = os.getenv("BENCH_CHECK") == "1"

local all_threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(all_threads, thread)
end

-- Benign argument text: twelve strings, 661 characters in all, no trigger words.
local texts = {
  "Quarterly revenue summary for the northern region",
  "Please list the open invoices older than thirty days",
  "Sort by amount, largest first, and include the customer name",
  "Use the EUR currency and round to two decimals",
  "The report goes to the finance team on Monday morning",
  "Skip archived accounts and internal test customers",
  "Group the rows by sales representative",
  "Add a total line at the bottom of every group",
  "Dates in ISO 8601 format, times in UTC",
  "Limit the output to two hundred rows",
  "Mark invoices with partial payments",
  "Thanks, this is for the monthly review",
}

local head, tail
local creds = {}
local ncreds = 0
local counter = 0
local headers = {}
bad = 0

local function json_args()
  local parts = {}
  for i, t in ipairs(texts) do
    parts[#parts + 1] = string.format('"field_%02d":"%s"', i, t)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function init(args)
  if mode == "bridge" then
    local msg = table.concat(texts, " ")
    head = '{"jsonrpc":"2.0","id":"'
    tail = '","method":"tools/call","params":{"name":"echo","arguments":{"message":"' .. msg .. '"}}}'
  else
    head = '{"jsonrpc":"2.0","id":"'
    tail = '","method":"tools/call","params":{"name":"search_invoices","arguments":'
      .. json_args() .. ',"_meta":{"progressToken":null}}}'
  end
  headers["Content-Type"] = "application/json"
  headers["Accept"] = "application/json, text/event-stream"
  headers["MCP-Protocol-Version"] = proto
  if session and session ~= "" then
    headers["Mcp-Session-Id"] = session
  end
  if auth_file and auth_file ~= "" then
    local f = assert(io.open(auth_file, "r"))
    for line in f:lines() do
      if line ~= "" then
        ncreds = ncreds + 1
        creds[ncreds] = line
      end
    end
    f:close()
  end
  -- Threads start at different offsets of the credential list.
  counter = (tid or 1) * 100003
end

function request()
  counter = counter + 1
  if ncreds > 0 then
    headers[auth_header] = creds[(counter % ncreds) + 1]
  end
  local body = head .. tostring(tid or 1) .. "-" .. tostring(counter) .. tail
  return wrk.format("POST", path, headers, body)
end

if check then
  function response(status, hdrs, body)
    if status == 200 then
      if not string.find(body, '"result"', 1, true) or string.find(body, '"isError":true', 1, true) then
        bad = bad + 1
      end
    end
  end
end

function done(summary, latency, requests)
  local nbad = 0
  for _, t in ipairs(all_threads) do
    nbad = nbad + (t:get("bad") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,' ..
    '"err_write":%d,"err_status":%d,"err_timeout":%d,"bad":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"p999_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, nbad, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.max))
end
