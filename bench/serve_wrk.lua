-- wrk script of bench/bench_serve.py: seeded POST /v1/translate requests, PNG answers checked.
-- Arguments (after `--`): PAIR N MAX_REQUESTS. Request i asks for prompt i mod 12 with seed i.

local prompts = {"a photo of a zebra", "an elephant", "a bird", "a cow in a field", "a sheep", "a giraffe",
                 "a horse running", "a dog", "a bear in the woods", "a cat sleeping", "two zebras",
                 "a big elephant"}
local headers = {["Content-Type"] = "application/json"}
local threads = {}

-- per-thread state (globals, so done() can read them with thread:get)
counter, answered, bad = 0, 0, 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  pair = args[1] or "bert-vaegan-animals"
  n = tonumber(args[2] or "1")
  limit = tonumber(args[3] or "0")
end

function request()
  local i = counter
  counter = counter + 1
  local body = string.format('{"pair": "%s", "texts": ["%s"], "n": %d, "seed": %d, "format": "png"}',
                             pair, prompts[(i % #prompts) + 1], n, i)
  return wrk.format("POST", "/v1/translate", headers, body)
end

function response(status, hdrs, body)
  answered = answered + 1
  if status == 200 and string.sub(body, 1, 4) ~= "\137PNG" then
    bad = bad + 1  -- a 200 that is not a PNG (non-2xx answers wrk counts itself)
  end
  if limit > 0 and answered >= limit then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total_bad = 0
  for _, t in ipairs(threads) do
    total_bad = total_bad + t:get("bad")
  end
  io.write(string.format("n2n-bad-bodies: %d\n", total_bad))
end
