-- wrk script for bench.intake: every request an Alertmanager v4 webhook.
--
-- The body comes from the template file named by BENCH_TEMPLATE, written by
-- bench/intake.py. Each "@@ID@@" in it becomes a 10-digit id unique to this
-- request (2 digits of thread, 8 of counter), so every fingerprint is new and must
-- become a new row. "@@GROUP@@" becomes the request's group: its own id (every
-- request a new group), or, with BENCH_GROUPS=n, the counter modulo n (n groups that
-- grow). BENCH_OFFSET starts the counter elsewhere (a later phase of the same run).
-- With BENCH_REQUESTS=n, once n answers came the file BENCH_FLAG is written: wrk
-- itself only stops at the end of its duration, so bench/intake.py waits for the
-- file and stops wrk with SIGINT (which prints the summary as usual; the requests
-- still in flight then are counted too). BENCH_TOKEN is the bearer token.
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
  counter = tonumber(os.getenv("BENCH_OFFSET") or "0")
  groups = tonumber(os.getenv("BENCH_GROUPS") or "0")
  limit = tonumber(os.getenv("BENCH_REQUESTS") or "0")
  flag = os.getenv("BENCH_FLAG")
  answered = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  wrk.headers["User-Agent"] = "Alertmanager/0.25.0"
end

function request()
  counter = counter + 1
  local id = string.format("%02d%08d", tid, counter)
  local group = id
  if groups > 0 then
    group = string.format("%02d", counter % groups)
  end
  local body = template:gsub("@@ID@@", id):gsub("@@GROUP@@", group)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if limit > 0 then
    answered = answered + 1
    if answered == limit and flag then
      local file = assert(io.open(flag, "w"))
      file:write(answered)
      file:close()
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_WRK requests=%d non2xx=%d errors=%d duration_us=%d p50_us=%d p99_us=%d\n",
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
