#!/usr/bin/python3
"""The Python idiom fetchd replaces, done right, as a server bench/run can load.

    body = await loop.run_in_executor(pool, fetch_and_render, spec)

An aiohttp server answering POST /v1/fetch with a subset of fetchd's request
fields (url, method, params, headers, body, json, timeout, follow_redirects)
and the same response fields fetchd returns (url, status, reason, ok,
http_version, headers, header_list, history, encoding, apparent_encoding,
text or content_base64, json, cookies, links, size, truncated, elapsed_ms,
timing), as one JSON document.

This is the strongest version of the idiom a careful author would write, so
that the comparison with fetchd is with Python at its best, not a strawman:

- one requests.Session per worker thread (threading.local), so every worker
  keeps its connection to the upstream alive, as fetchd's workers do; the
  Session's cookie jar is cleared after each call, so that (as with
  requests.request) no cookie leaks from one fetch into the next;
- the function run on the ThreadPoolExecutor(N) does the whole job: the
  request, every lazy Response field (.text, .json(), .apparent_encoding,
  .links, .cookies) and json.dumps into the finished bytes. The event loop
  only parses the small request body and writes those bytes back.

The previous version of this file was the idiom as usually written
(functools.partial(requests.request, ...): a new Session and connection per
call, and the Response materialized on the loop thread after the await);
bench/results/RESULTS.md quotes its figures beside this one's.

Debian packages: python3-aiohttp, python3-requests, python3-uvloop (--uvloop).

usage: run_in_executor.py --port PORT [--threads N] [--uvloop]
"""
import argparse
import asyncio
import base64
import json
import re
import sys
import threading
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
    """The lazy requests.Response fields, as one dict (on the worker thread)."""
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


LOCAL = threading.local()


def session():
    """This worker thread's Session: its connections to the upstream stay open."""
    s = getattr(LOCAL, "session", None)
    if s is None:
        s = LOCAL.session = requests.Session()
    return s


def render(status, doc):
    return status, json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def error(code, message, status):
    return render(status, {"error": {"code": code, "message": message}})


def fetch_and_render(method, url, kw, submitted):
    """Run on a worker: the fetch, every response field, the JSON bytes."""
    started = time.perf_counter()
    s = session()
    try:
        r = s.request(method, url, **kw)
        return render(200, materialize(r, (started - submitted) * 1000))
    except requests.Timeout as e:
        return error("upstream_timeout", str(e), 504)
    except requests.RequestException as e:
        return error("upstream_error", str(e), 502)
    finally:
        s.cookies.clear()


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
    loop = asyncio.get_running_loop()
    status, body = await loop.run_in_executor(pool, fetch_and_render, spec.get("method", "GET").upper(),
                                              spec["url"], kw, time.perf_counter())
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


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
