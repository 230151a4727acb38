"""A Privacy Pass client for token type 2 written apart from ours, on
Python's `cryptography` and RFC 9474 / RFC 9578 as written: it builds the
standard challenge, blinds a token request, and finalises the issuer's
answer into a token that `cryptography` verifies as a plain RSASSA-PSS
signature (SHA-384, MGF1-SHA-384, 48-byte salt).

  blind SPKI_HEX HOST           -> prints JSON {request, state}
  finalize STATE_JSON RESP_HEX  -> prints the token (hex)
"""
import hashlib
import json
import secrets
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

HASH_LEN = 48  # SHA-384
SALT_LEN = 48


def challenge(host):
    name = host.encode()
    # TokenChallenge: token_type, issuer_name<1..2^16-1>,
    # redemption_context<0..32> (empty), origin_info<0..2^16-1>.
    return (2).to_bytes(2, "big") + len(name).to_bytes(2, "big") + name + b"\x00" + \
        len(name).to_bytes(2, "big") + name


def mgf1(seed, length):
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha384(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def emsa_pss_encode(msg, em_bits):
    # RFC 8017 §9.1.1.
    em_len = (em_bits + 7) // 8
    m_hash = hashlib.sha384(msg).digest()
    salt = secrets.token_bytes(SALT_LEN)
    h = hashlib.sha384(b"\x00" * 8 + m_hash + salt).digest()
    db = b"\x00" * (em_len - SALT_LEN - HASH_LEN - 2) + b"\x01" + salt
    masked = bytes(a ^ b for a, b in zip(db, mgf1(h, em_len - HASH_LEN - 1)))
    top = 8 * em_len - em_bits
    masked = bytes([masked[0] & (0xFF >> top)]) + masked[1:]
    return masked + h + b"\xbc"


def blind(spki_hex, host):
    spki = bytes.fromhex(spki_hex)
    key = serialization.load_der_public_key(spki).public_numbers()
    n, e = key.n, key.e
    k = (n.bit_length() + 7) // 8
    key_id = hashlib.sha256(spki).digest()
    nonce = secrets.token_bytes(32)
    token_input = (2).to_bytes(2, "big") + nonce + hashlib.sha256(challenge(host)).digest() + key_id
    m = int.from_bytes(emsa_pss_encode(token_input, n.bit_length() - 1), "big")
    while True:
        r = secrets.randbelow(n - 2) + 2
        try:
            r_inv = pow(r, -1, n)
            break
        except ValueError:
            continue
    blinded = (m * pow(r, e, n)) % n
    request = (2).to_bytes(2, "big") + key_id[-1:] + blinded.to_bytes(k, "big")
    state = {"spki": spki_hex, "input": token_input.hex(), "r_inv": str(r_inv)}
    print(json.dumps({"request": request.hex(), "state": state}))


def finalize(state_json, response_hex):
    state = json.loads(state_json)
    spki = bytes.fromhex(state["spki"])
    public = serialization.load_der_public_key(spki)
    n = public.public_numbers().n
    k = (n.bit_length() + 7) // 8
    blind_sig = int.from_bytes(bytes.fromhex(response_hex), "big")
    sig = ((blind_sig * int(state["r_inv"])) % n).to_bytes(k, "big")
    token_input = bytes.fromhex(state["input"])
    public.verify(sig, token_input,
                  padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=SALT_LEN),
                  hashes.SHA384())
    # Token: token_type, nonce, challenge_digest, token_key_id, authenticator.
    print((token_input + sig).hex())


if __name__ == "__main__":
    if sys.argv[1] == "blind":
        blind(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "finalize":
        finalize(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: blind SPKI_HEX HOST | finalize STATE RESP_HEX")
