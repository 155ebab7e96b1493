"""An identity provider for `make bench`'s gateway-jwt target: an RSA key (openssl), its JWKS in
DIR/jwks.json (served by `python3 -m http.server` from DIR) and one RS256 token for the bench
tenant's issuer, printed on stdout. A pod holds its projected token for up to an hour, so every
request of the run presents the same token, as real clients do.

    python3 bench/jwt.py DIR ISSUER
"""

import base64
import json
import subprocess
import sys
import time
from pathlib import Path


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    directory, issuer = Path(sys.argv[1]), sys.argv[2]
    key = directory / "key.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
                   check=True, capture_output=True)
    modulus = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"],
                             check=True, capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    jwk = {"kty": "RSA", "kid": "bench", "use": "sig", "alg": "RS256",
           "n": b64url(bytes.fromhex(modulus)), "e": b64url((65537).to_bytes(3, "big"))}
    (directory / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": "bench"}
    claims = {"iss": issuer, "sub": "bench-workload", "aud": "switchboard-bench", "iat": now, "exp": now + 7200}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(),
                               check=True, capture_output=True).stdout
    print(f"{signing_input}.{b64url(signature)}")


if __name__ == "__main__":
    main()
