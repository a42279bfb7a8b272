-- POST the fetch request in $FETCH_BODY (a JSON document) to the URL given
-- to wrk (fetchd's or the Python reference's /v1/fetch), keep-alive.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local report = require("report")

wrk.method = "POST"
wrk.body = assert(os.getenv("FETCH_BODY"), "FETCH_BODY is not set")
wrk.headers["Content-Type"] = "application/json"

done = report.done
