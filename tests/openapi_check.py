#!/usr/bin/env python3
"""Validate answers of a live fetchd against docs/openapi.yaml.

usage: openapi_check.py OPENAPI MANIFEST

Each line of MANIFEST is "METHOD PATH STATUS FILE [SCHEMA]": FILE holds the
body fetchd answered to METHOD PATH with STATUS. The body must match the
schema the OpenAPI document gives for that path, method and status (its
application/json content; an unknown path must be a 404 Error and a verb
the path does not take a 405 Error), and, when SCHEMA is named, the component
schema of that name too. A "REQUEST SCHEMA FILE valid|invalid" line checks
that a request body the test sent is (or is not) accepted by a component
schema, so the request schemas are held to what fetchd accepts.

Every component schema is first checked against JSON Schema draft 2020-12
(OpenAPI 3.1's dialect). Exit 0 when all pass, 1 with every failure
listed otherwise, 2 on usage errors.
"""
import json
import sys

import jsonschema
import yaml

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_for(doc, ref_or_schema):
    """A standalone draft 2020-12 schema whose local $refs resolve in doc."""
    return {"$schema": DIALECT, "components": doc["components"], "allOf": [ref_or_schema]}


def resolve(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        ptr = node["$ref"]
        if not ptr.startswith("#/"):
            raise ValueError("only local $refs are used: %s" % ptr)
        node = doc
        for part in ptr[2:].split("/"):
            node = node[part]
    return node


def check(doc, schema, instance, what, failures):
    validator = jsonschema.Draft202012Validator(schema_for(doc, schema))
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    for e in errors:
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        failures.append("%s: at %s: %s" % (what, where, e.message[:300]))
    return not errors


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        doc = yaml.safe_load(f)
    if not str(doc.get("openapi", "")).startswith("3.1"):
        print("%s: not OpenAPI 3.1" % argv[1], file=sys.stderr)
        return 1
    failures = []
    for name, schema in doc["components"]["schemas"].items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema_for(doc, schema))
        except jsonschema.SchemaError as e:
            failures.append("components/schemas/%s is not a valid schema: %s" % (name, e.message))
    checked = 0
    with open(argv[2]) as manifest:
        for line in manifest:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "REQUEST":
                _, name, path, want = parts
                with open(path) as f:
                    text = f.read()
                try:
                    body = json.loads(text)
                except ValueError:
                    body = None
                ref = {"$ref": "#/components/schemas/" + name}
                errs = []
                # a body that is not JSON is no valid request of any schema
                ok = body is not None and check(doc, ref, body, "request", errs)
                if body is None:
                    body = text
                if ok != (want == "valid"):
                    failures.append("request %s should be %s for %s: %s %s" % (
                        json.dumps(body)[:200], want, name, "; ".join(errs), ""))
                checked += 1
                continue
            method, path, status, body_path = parts[:4]
            named = parts[4] if len(parts) > 4 else None
            what = "%s %s -> %s" % (method, path, status)
            route = path.split("?")[0]
            item = doc["paths"].get(route)
            op = item.get(method.lower()) if item is not None else None
            if op is None:
                # an unknown path is 404 and a verb the route does not
                # take is 405, both the Error document (docs/api.md)
                want = "404" if item is None else "405"
                if status != want:
                    failures.append("%s: %s %s is not in the OpenAPI paths: want %s" % (
                        what, method, route, want))
                    continue
                op = {"responses": {status: {"$ref": "#/components/responses/Error"}}}
            response = op.get("responses", {}).get(status)
            if response is None:
                failures.append("%s: status %s is not documented for it" % (what, status))
                continue
            response = resolve(doc, response)
            with open(body_path) as f:
                try:
                    body = json.load(f)
                except ValueError:
                    failures.append("%s: the body is not JSON" % what)
                    continue
            media = response.get("content", {}).get("application/json")
            if media is None:
                failures.append("%s: no application/json content documented" % what)
                continue
            check(doc, media["schema"], body, what, failures)
            if named:
                check(doc, {"$ref": "#/components/schemas/" + named}, body,
                      "%s as %s" % (what, named), failures)
            checked += 1
    for f in failures:
        print(f)
    print("openapi_check: %d answers and requests checked, %d failures" % (checked, len(failures)))
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
