-- wrk script: POST one chat completion per request, as an OpenAI client would.
-- Environment: BENCH_MODEL (model name), BENCH_KEY (API key), BENCH_STREAM=1 for an SSE stream.
-- Prints one machine-readable BENCH_RESULT line at the end for bench/report.py.
local model = os.getenv("BENCH_MODEL") or "bench-model"
local key = os.getenv("BENCH_KEY") or "sk-switchboard-bench"
local stream = os.getenv("BENCH_STREAM") == "1"

-- max_tokens as a real client sets it: the gateway's token rate limit admits the prompt estimate plus
-- max_tokens (4096 without it), and the reply here is 14 tokens. Without it, 4110 tokens a request
-- would exhaust the bench tenant's token limit (at most 60 million a minute, bench/config/bench.yaml)
-- within a second of load.
local body = '{"model":"' .. model .. '","max_tokens":16,"messages":[{"role":"user","content":'
    .. '"Say hello to the benchmark in a few short words please"}]'
if stream then
  body = body .. ',"stream":true,"stream_options":{"include_usage":true}'
end

wrk.method = "POST"
wrk.body = body .. "}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d p50_us=%.0f p90_us=%.0f p99_us=%.0f non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
