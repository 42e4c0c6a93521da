-- delay.lua: each connection waits 1 ms before its next request (wrk's delay() hook).
-- With -c32 this caps the load near 20-25k req/s: the server is NOT saturated, so CPU per
-- request and latency can be compared with and without the agent.
function delay()
   return 1
end
