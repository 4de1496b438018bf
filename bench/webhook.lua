-- wrk script for bench.intake: every request a new Alertmanager v4 webhook.
--
-- The body comes from the template file named by BENCH_TEMPLATE, written by
-- bench/intake.py. Each "@@ID@@" in it becomes a 10-digit id unique to this
-- request (2 digits of thread, 8 of counter), so every groupKey and fingerprint is
-- new and must become a new row. BENCH_TOKEN is the bearer token.
--
-- done() prints one line that bench/intake.py parses:
--   BENCH_WRK requests=N non2xx=N errors=N duration_us=N p50_us=N p99_us=N

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(os.getenv("BENCH_TEMPLATE"), "rb"))
  template = file:read("*a")
  file:close()
  counter = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  wrk.headers["User-Agent"] = "Alertmanager/0.25.0"
end

function request()
  counter = counter + 1
  local id = string.format("%02d%08d", tid, counter)
  local body = template:gsub("@@ID@@", id)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_WRK requests=%d non2xx=%d errors=%d duration_us=%d p50_us=%d p99_us=%d\n",
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
