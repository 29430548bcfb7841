-- wrk script of bench/web.py: one kind of request, bounded in count, results as JSON.
--
-- Read from the environment (set by bench/web.py):
--   WRK_METHOD   GET or POST
--   WRK_BODY     request body (POST)
--   WRK_HEADERS  extra headers, one "Name: value" per line
--   WRK_PATHS    file of paths, one a line, taken in turn (else the URL's path)
--   WRK_LIMIT    stop after this many responses (0: only the duration bounds the run)
--   WRK_OUT      where to write the JSON summary
--
-- Run it with one thread (-t1): the count is that thread's. wrk's own thread:stop() stops
-- the requests but not the clock (wrk sleeps out the whole -d), so on reaching the count
-- the script also sends wrk SIGINT (20 ms later), which ends the run there and reports
-- its real length.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  limit = tonumber(os.getenv("WRK_LIMIT") or "0")
  headers = {}
  for line in (os.getenv("WRK_HEADERS") or ""):gmatch("[^\n]+") do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  method = os.getenv("WRK_METHOD") or "GET"
  body = os.getenv("WRK_BODY")
  if body == "" then body = nil end
  paths = {}
  local file = os.getenv("WRK_PATHS")
  if file and file ~= "" then
    for line in io.lines(file) do table.insert(paths, line) end
  end
  position = 0
  answered = 0
  statuses = {}
end

function request()
  local path = nil
  if #paths > 0 then
    position = position % #paths + 1
    path = paths[position]
  end
  return wrk.format(method, path, headers, body)
end

function response(status, response_headers, response_body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  answered = answered + 1
  if limit > 0 and answered == limit then
    wrk.thread:stop()
    -- In the background: system() ignores SIGINT in wrk until the shell returns.
    os.execute("(sleep 0.02; kill -INT $PPID) &")
  end
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(counts) do
    table.insert(parts, string.format('"%s": %d', status, count))
  end
  local e = summary.errors
  local out = io.open(os.getenv("WRK_OUT"), "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, table.concat(parts, ", ")))
  out:close()
end
