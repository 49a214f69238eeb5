#!/usr/bin/env python3
"""Writes the committed seed corpora (fuzz/corpus/<target>/) from the tests' examples, the
RFC vectors in crates/gatehouse-core/testdata and the docs' config blocks. Re-run after adding
examples; libFuzzer names its own finds by content hash next to these."""
import base64, hashlib, hmac, json, os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(rel):
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read()


def blocks(rel, lang):
    text = read(rel).decode()
    return re.findall(r"```" + lang + r"\n(.*?)```", text, re.S)


# path (design §3 examples and the normalization tests)
for i, p in enumerate([
    "/", "/a/b/", "/a//b", "/a/./b", "/a/../b", "/%2e%2e/x", "/..;/admin", "/a%2Fb",
    "/a%252Fb", "/a\\b", "/a%5Cb", "/a%00b", "/%C3%A9t%C3%A9", "/%ff", "/a%2", "/a b",
    "/tenants/acme/orders/42", "/.well-known/jwks.json", "relative", "/a/%2e/b/.",
]):
    put("path", f"seed-{i:02}", p)

# credential: shape byte, then lines (see the target)
B = lambda s: base64.b64encode(s.encode()).decode()
creds = [
    (1, ["Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"]),
    (1, ["Basic " + B("Aladdin:open sesame")]),  # RFC 7617 §2
    (1, ["Basic " + B("test:123£")]),  # RFC 7617 §2.1
    (1, ["ApiKey k_live_abc"]),
    (4, ["k_live_abc"]),
    (5, ["Bearer a", "k"]),
    (2, ["Bearer a", "Bearer b"]),
    (1, ["Negotiate abc"]),
    (1, ["bearer   abc=="]),
    (1, ['Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", '
         'algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, '
         'cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, '
         'response="8ca523f5e9506fed4657c9700eebdbec", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"']),
    (0x10, ["access_token=abc&x=1"]),
    (1, ["Bearer a, Basic b"]),
]
for i, (shape, lines) in enumerate(creds):
    put("credential", f"seed-{i:02}", bytes([shape]) + "\n".join(lines).encode())

# basic: decoded user-pass (even first byte = base64-encode the rest as is)
for i, up in enumerate(["Aladdin:open sesame", "test:123£", "user:", ":pw", "a:b:c", "nocolon"]):
    put("basic", f"seed-{i:02}", b"\x00" + up.encode())
put("basic", "seed-raw", b"\x01QWxhZGRpbjpvcGVuIHNlc2FtZQ==")

# cookie: `Cookie` lines (even first byte) or a session's fields sealed by the harness (odd:
# 4 bytes auth_time, 4 bytes ttl, the user, NUL, other cookies)
for i, lines in enumerate([
    "theme=dark; gatehouse_session=v1.s1.YWxpY2U.pwd.1.2.c2ln",
    "gatehouse_session=\ngatehouse_session=x.y",
    "a=1;b=2;gatehouse_session=v1..........",
    "gatehouse_session=v1.s.dQ.pwd.0.99999999999.AAAA; gatehouse_session=second",
]):
    put("cookie", f"seed-{i:02}", b"\x00" + lines.encode())
for i, (user, before) in enumerate([("alice", "theme=dark; lang=en"), ("ann.o'neil", ""),
                                    ("用户", "x=1;;y=2"), ("", "=nameless; gatehouse_session")]):
    ttl = 5000 if i % 2 == 0 else 10
    put("cookie", f"seed-fields-{i:02}", b"\x01" + (100).to_bytes(4, "little")
        + ttl.to_bytes(4, "little") + user.encode() + b"\x00" + before.encode())

# digest: the RFC 7616 §3.9.1 and §3.9.2 credentials (the part after `Digest `)
rfc = creds[9][1][0][len("Digest "):]
put("digest", "rfc7616-3.9.1-md5", rfc)
put("digest", "rfc7616-3.9.1-sha256", rfc.replace("algorithm=MD5", "algorithm=SHA-256").replace(
    "8ca523f5e9506fed4657c9700eebdbec", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"))
put("digest", "rfc7616-3.9.2-userhash",
    'username="488869477bf257147b804c45308cd62ac4e25eb717b12b298c79e62dcea254ec", realm="api@example.org", '
    'uri="/doe.json", algorithm=SHA-512-256, nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", nc=00000001, '
    'cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v", qop=auth, '
    'response="ae66e67d6b427bd3f120414a82e4acff38e8ecd9101d6c861229025f607a79dd", userhash=true, '
    'opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS"')
put("digest", "username-star",
    "username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm=\"r\", uri=\"/\", nonce=\"n\", nc=00000001, "
    "cnonce=\"c\", qop=auth, response=\"8ca523f5e9506fed4657c9700eebdbec\"")

# jws: the RFC 7515 vectors and a few near-misses
for n in ["a1", "a2", "a3"]:
    put("jws", f"rfc7515-{n}", read(f"crates/gatehouse-core/testdata/rfc7515/{n}.jws").strip())
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
for i, h in enumerate([
    {"alg": "none"}, {"alg": "HS256", "typ": "JWT"}, {"alg": "EdDSA", "typ": "at+jwt", "kid": "ed1"},
    {"alg": "HS256", "crit": ["exp"]}, {"alg": "RS256", "jwk": {"kty": "oct"}},
]):
    claims = {"iss": "https://sso.example.com", "sub": "ann", "aud": "api", "exp": 1800000600}
    put("jws", f"header-{i:02}", f"{b64(json.dumps(h).encode())}.{b64(json.dumps(claims).encode())}.AAAA")

# jwt_claims: header \0 claims
claims = [
    {"iss": "https://sso.example.com", "sub": "ann", "aud": "api", "iat": 1799999995, "exp": 1800000600, "jti": "t-1"},
    {"iss": "https://sso.example.com", "sub": "ann", "aud": ["x", "api-2"], "exp": 1800000600, "nbf": 1799999000,
     "realm_access": {"roles": ["ops", "viewer"]}, "scope": ["a", "b"], "org_id": "acme"},
    {"iss": "https://sso.example.com", "sub": "ann", "aud": "api", "exp": 1799999990},
    {"iss": "https://sso.example.com", "sub": "", "aud": "api", "exp": 1800000600},
    {"iss": "https://sso.example.com", "sub": "ann", "aud": "api", "exp": 1.8e9, "scope": "a b c"},
]
for i, c in enumerate(claims):
    put("jwt_claims", f"seed-{i:02}", b'{"alg":"HS256","typ":"JWT"}\x00' + json.dumps(c).encode())
put("jwt_claims", "dup-exp", b'{"alg":"HS256"}\x00{"iss":"https://sso.example.com","sub":"a","aud":"api","exp":1,"exp":1800000600}')

# challenge: RFC 9110 §11.6.1, RFC 7616 §3.9, RFC 6750 §3
for i, c in enumerate([
    'Basic realm="simple"',
    'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
    'Bearer realm="example", error="invalid_token", error_description="The access token expired"',
    'Negotiate a87421000492aa874209af8bc028', ', , Basic realm="x" ,', 'Bearer', 'Basic realm=""',
    'Digest realm="\xe9"',
]):
    put("challenge", f"seed-{i:02}", c.encode("latin-1"))

# config: the docs' TOML blocks and the core tests' configs
n = 0
for rel in ["README.md", "docs/config.md", "docs/forward-auth.md"]:
    for b in blocks(rel, "toml"):
        put("config", f"doc-{n:02}", b)
        n += 1

# probe_spec: the probe zoo and the docs' TOML
for f in sorted(os.listdir(os.path.join(ROOT, "bench/probe-zoo"))):
    if f.endswith(".toml"):
        put("probe_spec", f[:-5], read(f"bench/probe-zoo/{f}"))
for i, b in enumerate(blocks("docs/probe.md", "toml")):
    put("probe_spec", f"doc-{i:02}", b)

# probe_openapi: JSON and YAML OpenAPI 3
doc = {
    "openapi": "3.0.3", "security": [{"bearer": []}],
    "components": {"parameters": {"Id": {"name": "id", "in": "path", "schema": {"type": "integer", "default": 7}}},
                   "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "paths": {"/health": {"get": {"security": []}},
              "/items/{id}": {"parameters": [{"$ref": "#/components/parameters/Id"}], "get": {},
                              "delete": {"x-probe-allow": ["admin"]}},
              "/opt": {"get": {"security": [{}, {"bearer": []}]}}},
}
put("probe_openapi", "json", json.dumps(doc, indent=1))
put("probe_openapi", "yaml", """openapi: "3.1.0"
security:
  - basic: []
components:
  securitySchemes:
    basic: {type: http, scheme: basic}
paths:
  /a/{x}:
    get:
      parameters:
        - {name: x, in: path, example: "a b"}
  /b:
    post: {security: []}
""")
put("probe_openapi", "swagger2", '{"openapi":"2.0","paths":{}}')

# mock_stubs: the mock tests' stubs
for i, s in enumerate([
    '[{"method": "GET", "url": "/api/me", "status": 200, "body": {"name": "bob"}}]',
    '{"url": "/v", "body": "one"}',
    '''{"mappings": [
  {"request": {"method": "GET", "urlPathPattern": "/orders/[0-9]+"},
   "response": {"status": 404, "jsonBody": {"error": "no such order"}}},
  {"priority": 1,
   "request": {"method": "GET", "urlPath": "/orders/7",
               "headers": {"Authorization": {"equalTo": "Bearer good"}, "X-Tenant": {"contains": "acme"}}},
   "response": {"status": 200, "headers": {"Content-Type": "text/plain", "X-Order": "7"}, "body": "order 7"}}
]}''',
    '{"url": 5}', '[{"urlPattern": "(", "status": 99}]',
]):
    put("mock_stubs", f"seed-{i:02}", s)
print("corpora written to", OUT)
