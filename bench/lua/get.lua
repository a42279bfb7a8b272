-- GET the URL given to wrk (nginx, the upstream itself), keep-alive; only
-- adds the machine-readable summary.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local report = require("report")

done = report.done
