#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz corpus (fuzz/corpus/<target>/seed-*) from the test
tables: catalogue requests, JWT vectors, example configurations. Run after changing a table;
inputs the fuzzer adds (named by their hash) are kept."""
import base64, hashlib, hmac, json, pathlib, re, sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
K = b"Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A"
SK = "sk_test_4f9d2c7a8b1e6f3d0a5c9e2b7f4a1d8c"
PK = "pk_test_7c3e9a1f5b2d8e4a6c0f3b9d1e7a5c2f"
CS = "cs_test_Zr4Qm8Vn2Lp6Xw1Ty9Hs3Kd7Bf5Gj0"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(header: str, payload: str, key: bytes = K) -> str:
    head = f"{b64(header.encode())}.{b64(payload.encode())}"
    tag = hmac.new(key, head.encode(), hashlib.sha256).digest()
    return f"{head}.{b64(tag)}"


HEADER = '{"alg":"HS256","typ":"JWT"}'
def claims(token_type="access", exp=4102444800, sub="alice"):
    return json.dumps({"sub": sub, "token_type": token_type, "exp": exp,
                       "nbf": 1700000000, "iat": 1700000000}, separators=(",", ":"))

J01 = sign(HEADER, claims())
PLACEHOLDERS = {
    "J01": J01,
    "J15a": sign(HEADER, claims("refresh")),
    "J09a": J01.rsplit(".", 1)[0] + ".",
    "J14b": sign(HEADER, claims(exp=1749999400)),
    "J01%": "".join(f"%{ord(c):02X}" for c in J01[:3]) + J01[3:],
    "SK": SK, "PK": PK, "CS": CS, "CSB": "cs_test_other_client_secret_nVjh9XxeUpEHicLzXKhcCtEzmn39",
}


def expand(text: str) -> bytes:
    def repl(m):
        inner = m.group(1)
        if inner in PLACEHOLDERS:
            return PLACEHOLDERS[inner]
        unit, _, count = inner.rpartition("*")
        if unit and count.isdigit():
            return unit * min(int(count), 200)
        return m.group(0)
    text = re.sub(r"<([^<>]*)>", repl, text)
    out, i = bytearray(), 0
    raw = text.encode()
    while i < len(raw):
        if raw[i] == 0x5C and i + 1 < len(raw):
            nxt = chr(raw[i + 1])
            if nxt == "x":
                out.append(int(raw[i + 2:i + 4], 16)); i += 4; continue
            out += {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}[nxt]; i += 2; continue
        out.append(raw[i]); i += 1
    return bytes(out)


def write(target: str, name: str, data: bytes):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data)


def main():
    for target in ["config", "path", "token", "extract", "decision"]:
        for old in (CORPUS / target).glob("seed-*") if (CORPUS / target).exists() else []:
            old.unlink()
    # Requests: every catalogue row, in the properties' request format.
    for line in (ROOT / "tests/data/security-cases.tsv").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        parts = cols[2].split(" | ")
        method, target = parts[0].split(" ", 1)
        first = method[0].encode() + (b"" if target == "-" else expand(target))
        lines = [first]
        for part in parts[1:]:
            if part.startswith("*"):
                count, header = part[1:].split(" ", 1)
                name, value = header.split(":", 1)
                lines += [f"{name}{i}:{value.strip()}".encode() for i in range(1, min(int(count), 20) + 1)]
            else:
                name, value = part.split(":", 1)
                lines.append(name.encode() + b":" + expand(value[1:] if value.startswith(" ") else value))
        request = b"\n".join(lines)
        write("decision", cols[0], request)
        write("extract", cols[0], request)
        write("path", cols[0], first[1:].split(b"?")[0].split(b"#")[0])
    # Tokens: the JWT vectors as they are, and signed header/payload pairs.
    for line in (ROOT / "tests/data/jwt-vectors.tsv").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        write("token", cols[0], expand(cols[-1]))
    for name, header, payload in [
        ("valid", HEADER, claims()),
        ("refresh", HEADER, claims("refresh")),
        ("kid", '{"alg":"HS256","kid":"x"}', claims()),
        ("crit", '{"alg":"HS256","crit":["exp"]}', claims()),
        ("typ", '{"alg":"HS256","typ":"at+jwt"}', claims()),
        ("nested", '{"alg":"HS256"}', '{"sub":"alice","token_type":"access","exp":4102444800,"x":' + "[" * 60 + "]" * 60 + "}"),
        ("float-exp", '{"alg":"HS256"}', '{"sub":"alice","token_type":"access","exp":4102444800.5}'),
        ("dup-sub", '{"alg":"HS256"}', '{"sub":"alice","sub":"bob","token_type":"access","exp":4102444800}'),
        ("escaped", '{"alg":"HS\\u0032\\u0035\\u0036"}', '{"sub":"al\\u0069ce","tok\\u0065n_type":"access","exp":4102444800}'),
    ]:
        write("token", f"S-{name}", b"S" + header.encode() + b"\n" + payload.encode())
    # Configurations.
    base = {"secrets": [{"key": K.decode()}], "api_keys": [{"name": "server", "key": SK}],
            "publishable_keys": [{"name": "web", "key": PK}],
            "clients": [{"client_id": "client-a", "client_secret": CS, "role": "partner"}],
            "rules": [{"prefix": "/public", "mode": "none"}, {"path": "/login", "mode": "none"},
                      {"prefix": "/feed", "mode": "optional"},
                      {"prefix": "/admin", "mode": "required", "roles": ["admin"], "methods": ["GET", "POST"]}],
            "login_url": "https://auth.example.com/login?tenant=acme", "return_param": "return_to",
            "clock_skew_seconds": 30, "max_lifetime_seconds": 86400,
            "token_query_param": "token", "token_cookie": "session",
            "identity_headers": {"user": "x-user", "type": "x-type", "role": "x-role", "name": "x-name"},
            "forward_credentials": False}
    write("config", "full", json.dumps(base, indent=1).encode())
    write("config", "env", b'{"secrets":[{"kid":"a","key_env":"SECRET"},{"kid":"b","key":"0123456789abcdef0123456789abcdef"}]}')
    write("config", "minimal", b'{"default_mode":"none"}')
    write("config", "secret-as-string", b'{"secrets":"0123456789abcdef0123456789abcdef"}')
    write("config", "short", b'{"secrets":[{"key":"short"}]}')
    write("config", "unknown", b'{"secrets":[{"key":"0123456789abcdef0123456789abcdef"}],"bogus":1}')
    write("config", "not-json", b"secrets: [key]")
    write("config", "deep", b'{"rules":' + b"[" * 200 + b"]" * 200 + b"}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
