"""Reads every form body of a JSON list on stdin ({content_type, body: hex}) with Python's
parsers and prints, per body, the field names each parser found."""
import email.parser
import email.policy
import email.utils
import json
import sys
import urllib.parse


def multipart_names(content_type, body, policy):
    raw = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    try:
        message = email.parser.BytesParser(policy=policy).parsebytes(raw)
    except Exception:
        return []
    names = []
    if not message.is_multipart():
        return names
    for part in message.get_payload():
        try:
            name = part.get_param("name", header="content-disposition")
        except Exception:
            name = None
        if name:
            try:
                names.append(str(email.utils.collapse_rfc2231_value(name)))
            except Exception:
                names.append(str(name))
        try:
            header = part.get("content-disposition")
        except Exception:
            header = None
        params = getattr(header, "params", None)
        if params and params.get("name"):
            names.append(str(params["name"]))
    return names


out = []
for case in json.load(sys.stdin):
    content_type, body = case["content_type"], bytes.fromhex(case["body"])
    readings = {}
    if content_type.lower().startswith("multipart/"):
        readings["email-compat32"] = multipart_names(content_type, body, email.policy.compat32)
        readings["email-http"] = multipart_names(content_type, body, email.policy.HTTP)
    else:
        text = body.decode("latin-1")
        for label, separator in (("parse_qsl", "&"), ("parse_qsl-semicolon", ";")):
            pairs = urllib.parse.parse_qsl(
                text, keep_blank_values=True, encoding="latin-1", separator=separator
            )
            readings[label] = [name for name, _ in pairs]
    out.append(readings)
json.dump(out, sys.stdout)
