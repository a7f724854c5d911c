-- http-bench.lua: the wrk script of bench/http-bench (keep-alive GETs that
-- cycle through a fixed list of request paths).
--
-- usage: wrk -t T -c C -d 10s --latency -s bench/http-bench.lua \
--            http://127.0.0.1:PORT -- PATHS_FILE
--
-- PATHS_FILE holds one request path a line, already URL-encoded, e.g.
--   /solr/bench/select?q=title%3Alibrary&rows=10
-- Every thread sends the paths in turn, thread k starting k * 7 paths
-- further on so that the threads do not run the same query at the same
-- moment; a thread's connections share its turn.
--
-- Why the script times the requests itself: before it reports (and before
-- done() sees them), wrk 4 "corrects" its latency histogram for
-- coordinated omission (stats_correct: every latency L above twice the
-- mean interval per connection E adds samples L-E, L-2E, ... down to E).
-- With a mix of 2 ms and 600 ms queries that moves the median far up (a
-- raw p50 of 16 ms reads 48 ms), so wrk's figures cannot be compared with
-- per-request latencies measured elsewhere. request() therefore appends a
-- tag `&_=N` to each path (Solr, and tisfs, ignore `_` and echo it in
-- responseHeader.params), notes the time (CLOCK_MONOTONIC through LuaJIT's
-- ffi) and response() finds the tag in the answer and records the raw
-- latency: request() runs just before wrk writes the request, response()
-- as wrk has parsed the whole answer, so these are wrk's own two instants.
--
-- done() prints one line that bench/http-bench parses (latencies in ms):
--   WRK_RESULT requests=N duration_s=S rps=R p50_ms=A p99_ms=B mean_ms=M
--              max_ms=X raw_n=N raw_p50_ms=.. raw_p99_ms=.. raw_mean_ms=..
--              raw_max_ms=.. untagged=.. err_connect=.. err_read=..
--              err_write=.. err_status=.. err_timeout=..
-- p50/p99/mean/max are wrk's (corrected) figures, raw_* the script's own
-- (nearest rank over every answer that came back within the run; untagged
-- counts answers without a tag that matched, e.g. error answers).
-- err_status counts answers with a status above 399. With the environment
-- variable HTTP_BENCH_SAMPLES=FILE, done() also writes every raw latency
-- (microseconds, one a line) to FILE.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } http_bench_timespec;
int clock_gettime(int clk_id, http_bench_timespec *tp);
]]
local ts = ffi.new("http_bench_timespec")
local CLOCK_MONOTONIC = 1

local function now_us()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
   return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

-- The main state: the threads, for done().
local threads, next_id = {}, 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

-- A thread's state.
local paths, n, i = {}, 0, 0
local seq, sent = 0, {}
lat, untagged = {}, 0     -- globals: done() reads them with thread:get

function init(args)
   local file = args[1]
   if file == nil then
      error("http-bench.lua: give the paths file after --")
   end
   for line in io.lines(file) do
      if line ~= "" then
         n = n + 1
         paths[n] = line
      end
   end
   if n == 0 then
      error("http-bench.lua: no paths in " .. file)
   end
   i = ((id or 0) * 7) % n
end

function request()
   i = i % n + 1
   seq = seq + 1
   local p = paths[i]
   local sep = "&"
   if not string.find(p, "?", 1, true) then sep = "?" end
   sent[seq] = now_us()
   return wrk.format("GET", p .. sep .. "_=" .. seq)
end

function response(status, headers, body)
   local t = now_us()
   local tag = tonumber(string.match(body, '"_"%s*:%s*"(%d+)"'))
   local t0 = tag and sent[tag]
   if t0 then
      sent[tag] = nil
      lat[#lat + 1] = t - t0
   else
      untagged = untagged + 1
   end
end

local function rank(xs, p)  -- nearest rank; xs sorted
   if #xs == 0 then return 0 end
   local k = math.ceil(#xs * p / 100)
   if k < 1 then k = 1 end
   return xs[k]
end

function done(summary, latency, requests)
   local s = summary.duration / 1e6
   local e = summary.errors
   local rps = 0
   if s > 0 then rps = summary.requests / s end
   local all, sum, nuntagged = {}, 0, 0
   for _, t in ipairs(threads) do
      for _, v in ipairs(t:get("lat") or {}) do
         all[#all + 1] = v
         sum = sum + v
      end
      nuntagged = nuntagged + (t:get("untagged") or 0)
   end
   table.sort(all)
   local out = os.getenv("HTTP_BENCH_SAMPLES")
   if out and out ~= "" then
      local f = assert(io.open(out, "w"))
      for _, v in ipairs(all) do f:write(string.format("%.1f\n", v)) end
      f:close()
   end
   local mean = 0
   if #all > 0 then mean = sum / #all end
   io.write(string.format(
      "WRK_RESULT requests=%d duration_s=%.3f rps=%.2f p50_ms=%.3f p99_ms=%.3f" ..
      " mean_ms=%.3f max_ms=%.3f raw_n=%d raw_p50_ms=%.3f raw_p99_ms=%.3f" ..
      " raw_mean_ms=%.3f raw_max_ms=%.3f untagged=%d err_connect=%d err_read=%d" ..
      " err_write=%d err_status=%d err_timeout=%d\n",
      summary.requests, s, rps,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      latency.mean / 1000, latency.max / 1000,
      #all, rank(all, 50) / 1000, rank(all, 99) / 1000, mean / 1000,
      (all[#all] or 0) / 1000, nuntagged,
      e.connect, e.read, e.write, e.status, e.timeout))
end
