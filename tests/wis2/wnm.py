#!/usr/bin/python3
"""wnm.py: the WIS2 side of tests/integration/56-wis2-cache.sh (Debian's python3 only).

  wnm.py make DATA_ID PUBTIME HREF FILE [--rel R] [--no-integrity] [--bad-integrity]
              [--cache-false] [--embed] [--datetime-null] [--length N]
      prints a notification message as a fake WIS2 node sends it.
  wnm.py check SCHEMA MSGS DATA_ID PUBTIME COUNT [--same-href] [--update]
      checks the messages seen on cache/ for DATA_ID and PUBTIME in MSGS (lines "topic json"):
      exactly COUNT of them; each valid by the WNM schema, with an id of its own, and passing
      pywis-pubsub's verify_data (the data behind its link matches integrity and length).
"""
import base64
import hashlib
import json
import sys
import urllib.request
import uuid


def make(argv):
    data_id, pubtime, href, path = argv[:4]
    opts = argv[4:]
    data = open(path, "rb").read()
    props = {"pubtime": pubtime, "datetime": None if "--datetime-null" in opts else pubtime,
             "data_id": data_id, "metadata_id": "urn:wmo:md:test:synop"}
    if "--no-integrity" not in opts:
        value = base64.b64encode(hashlib.sha512(data).digest()).decode()
        props["integrity"] = {"method": "sha512",
                              "value": "invalid hash" if "--bad-integrity" in opts else value}
    if "--cache-false" in opts:
        props["cache"] = False
    if "--embed" in opts:
        props["content"] = {"encoding": "base64", "value": base64.b64encode(data).decode(),
                            "size": len(data)}
    rel = opts[opts.index("--rel") + 1] if "--rel" in opts else "canonical"
    length = int(opts[opts.index("--length") + 1]) if "--length" in opts else len(data)
    msg = {"id": str(uuid.uuid4()), "conformsTo": ["http://wis.wmo.int/spec/wnm/1/conf/core"],
           "type": "Feature", "geometry": {"type": "Point", "coordinates": [6.1, 46.2]},
           "properties": props,
           "links": [{"href": href, "rel": rel, "type": "application/octet-stream",
                      "length": length}]}
    print(json.dumps(msg, separators=(",", ":")))


def messages(path):
    for line in open(path, encoding="utf-8"):
        topic, _, payload = line.rstrip("\n").partition(" ")
        if topic.startswith(("origin/", "cache/")):
            try:
                yield topic, json.loads(payload)
            except ValueError:
                pass


def verify_data(msg):
    """pywis_pubsub.verification.verify_data, without its package."""
    props = msg["properties"]
    link = next(l for l in msg["links"] if l["rel"] in ("canonical", "update", "deletion"))
    data = urllib.request.urlopen(link["href"], timeout=10).read()
    method = props["integrity"]["method"]
    size = props["content"]["size"] if "content" in props else link["length"]
    digest = base64.b64encode(hashlib.new(method, data).digest()).decode()
    return digest == props["integrity"]["value"] and len(data) == size


def main_link(msg):
    return next(l for l in msg["links"] if l["rel"] in ("canonical", "update", "deletion"))


def check(argv):
    from jsonschema.validators import Draft202012Validator
    schema_path, msgs, data_id, pubtime, count = argv[:5]
    opts = argv[5:]
    validator = Draft202012Validator(json.load(open(schema_path)))
    key = lambda m: (m["properties"].get("data_id"), m["properties"].get("pubtime"))
    origin = [m for t, m in messages(msgs) if t.startswith("origin/") and key(m) == (data_id, pubtime)]
    cache = [m for t, m in messages(msgs) if t.startswith("cache/") and key(m) == (data_id, pubtime)]
    problems = []
    if len(cache) != int(count):
        problems.append("%d cache messages, not %s" % (len(cache), count))
    for c in cache:
        errs = [e.message for e in validator.iter_errors(c)]
        if errs:
            problems.append("schema: " + "; ".join(errs))
        if any(c["id"] == o["id"] for o in origin):
            problems.append("the id was not renewed")
        same = any(main_link(c)["href"] == main_link(o)["href"] for o in origin)
        if "--same-href" in opts and not same:
            problems.append("the href changed")
        if "--same-href" not in opts and same:
            problems.append("the href still points at the origin")
        if "--update" in opts and main_link(c)["rel"] != "update":
            problems.append("rel is not update")
        try:
            if not verify_data(c):
                problems.append("verify_data: the data does not match integrity and length")
        except Exception as e:  # noqa: BLE001 - any failure to verify is the finding
            problems.append("verify_data: %r" % e)
    if problems:
        print("%s %s: %s" % (data_id, pubtime, " | ".join(problems)))
        for c in cache:
            print(json.dumps(c))
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2:])
        sys.exit(0)
    sys.exit(check(sys.argv[2:]))
