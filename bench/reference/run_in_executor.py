#!/usr/bin/python3
"""The Python idiom fetchd replaces, as a server bench/run can load.

    resp = await loop.run_in_executor(pool, functools.partial(requests.request, method, url, **kw))

An aiohttp server answering POST /v1/fetch with a subset of fetchd's request
fields (url, method, params, headers, body, json, timeout, follow_redirects),
running the blocking requests call on a ThreadPoolExecutor(N) and then
materializing the same response fields fetchd returns (url, status, reason,
ok, http_version, headers, header_list, history, encoding,
apparent_encoding, text or content_base64, json, cookies, links, size,
truncated, elapsed_ms, timing) into one JSON document.

As in the idiom, the Response's lazy fields (.text, .json(), .apparent_encoding,
.links, .cookies) are computed on the event loop thread after the await:
that is what the idiom does, and what fetchd moves onto its workers.
requests.request() opens a new Session per call, so there is no keep-alive to
the upstream: that too is the idiom as written.

Debian packages: python3-aiohttp, python3-requests, python3-uvloop (--uvloop).

usage: run_in_executor.py --port PORT [--threads N] [--uvloop]
"""
import argparse
import asyncio
import base64
import functools
import json
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from aiohttp import web

TEXTUAL = re.compile(
    r"^(text/|application/(json|xml|javascript|ecmascript|x-www-form-urlencoded)"
    r"|[^;]*\+(json|xml)\s*(;|$))", re.I)
JSONISH = re.compile(r"^[^;]*(/json|\+json)\s*(;|$)", re.I)
FIELDS = {"url", "method", "params", "headers", "body", "json", "timeout",
          "follow_redirects"}


def bad(code, message, status):
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def declared_charset(ctype):
    m = re.search(r";\s*charset\s*=\s*\"?([^\";\s]+)", ctype or "", re.I)
    return m.group(1).lower() if m else None


def header_dict(raw_items):
    out = {}
    for name, value in raw_items:
        k = name.lower()
        out[k] = out[k] + ", " + value if k in out else value
    return out


def materialize(r, queued_ms):
    """The lazy requests.Response fields, as one dict (on the loop thread)."""
    ctype = r.headers.get("content-type", "")
    raw_items = list(r.raw.headers.items()) if r.raw is not None else list(r.headers.items())
    content = r.content
    encoding = declared_charset(ctype)
    doc = {
        "url": r.url,
        "status": r.status_code,
        "reason": r.reason,
        "ok": r.status_code < 400,
        "http_version": {10: "1.0", 11: "1.1", 20: "2"}.get(getattr(r.raw, "version", 11), "1.1"),
        "headers": header_dict(raw_items),
        "header_list": [[k, v] for k, v in raw_items],
        "history": [{"url": h.url, "status": h.status_code, "reason": h.reason,
                     "headers": header_dict(h.headers.items())} for h in r.history],
        "encoding": encoding,
        "apparent_encoding": (r.apparent_encoding or "utf-8").lower(),
    }
    if TEXTUAL.match(ctype) or (not ctype and _is_utf8(content)):
        r.encoding = encoding or doc["apparent_encoding"]
        doc["text"] = r.text
    else:
        doc["content_base64"] = base64.b64encode(content).decode("ascii")
    if JSONISH.match(ctype):
        try:
            doc["json"] = r.json()
        except ValueError:
            pass
    cookies = {}
    for h in r.history + [r]:
        cookies.update(h.cookies.get_dict())
    doc["cookies"] = cookies
    doc["links"] = {k: dict(v) for k, v in r.links.items()}
    doc["size"] = len(content)
    doc["truncated"] = False
    total = r.elapsed.total_seconds() * 1000 + sum(h.elapsed.total_seconds() * 1000
                                                    for h in r.history)
    doc["elapsed_ms"] = round(total, 3)
    doc["timing"] = {"queued_ms": round(queued_ms, 3), "total_ms": round(total, 3)}
    doc["remote"] = None  # requests does not expose the peer address
    return doc


def _is_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def timed(fn, submitted):
    """Run fn on the worker; return (queue wait in ms, result)."""
    started = time.perf_counter()
    return (started - submitted) * 1000, fn()


async def fetch(request):
    pool = request.app["pool"]
    try:
        spec = await request.json()
    except ValueError:
        return bad("invalid_json", "body is not JSON", 400)
    if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
        return bad("invalid_request", "missing url", 400)
    unknown = set(spec) - FIELDS
    if unknown:
        return bad("invalid_request", "unknown field '%s'" % sorted(unknown)[0], 400)
    kw = {
        "params": spec.get("params"),
        "headers": spec.get("headers"),
        "allow_redirects": spec.get("follow_redirects", True),
        "timeout": spec.get("timeout", 30),
    }
    if "body" in spec:
        kw["data"] = spec["body"].encode("utf-8")
    if "json" in spec:
        kw["json"] = spec["json"]
    call = functools.partial(requests.request, spec.get("method", "GET").upper(), spec["url"], **kw)
    loop = asyncio.get_running_loop()
    try:
        queued_ms, r = await loop.run_in_executor(pool, timed, call, time.perf_counter())
    except requests.Timeout as e:
        return bad("upstream_timeout", str(e), 504)
    except requests.RequestException as e:
        return bad("upstream_error", str(e), 502)
    body = json.dumps(materialize(r, queued_ms), ensure_ascii=False, separators=(",", ":"))
    return web.Response(body=body.encode("utf-8"),
                        content_type="application/json", charset="utf-8")


async def healthz(request):
    return web.json_response({"status": "ok"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--uvloop", action="store_true")
    args = ap.parse_args()
    if args.uvloop:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = web.Application()
    app["pool"] = ThreadPoolExecutor(args.threads)
    app.router.add_post("/v1/fetch", fetch)
    app.router.add_get("/healthz", healthz)
    print("PORT %d loop=%s" % (args.port, "uvloop" if args.uvloop else "asyncio"), flush=True)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    sys.exit(main())
