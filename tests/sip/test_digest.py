"""Digest authentication: RFC 7616's worked examples, nonces checked without storing them, and
the nonce-count rule that refuses replays."""

from __future__ import annotations

import base64

import pytest

from sip.credentials import ha1
from sip.digest import (
    DigestResponse,
    Nonces,
    Verdict,
    challenge_headers,
    expected_response,
    parse_authorization,
    verify,
)

# RFC 7616 section 3.9.1: Mufasa, "Circle of Life", GET /dir/index.html, qop=auth.
RFC7616 = dict(
    username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", qop="auth",
    nc="00000001", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
)


@pytest.mark.parametrize(("algorithm", "response"), [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_the_rfc_7616_examples(algorithm: str, response: str) -> None:
    answer = DigestResponse(response=response, algorithm=algorithm, **RFC7616)
    key = ha1(algorithm, "Mufasa", "http-auth@example.org", "Circle of Life")
    assert expected_response(key, answer, "GET") == response


def test_an_authorization_header_is_parsed() -> None:
    answer = parse_authorization(
        'Digest username="ana", realm="demo.sip.example", nonce="abc", '
        'uri="sip:+12125550187@demo.sip.example", response="0123ABCD", algorithm=SHA-256, '
        'cnonce="x,y", qop=auth, nc=00000001')
    assert (answer.username, answer.algorithm, answer.qop, answer.nc) == (
        "ana", "SHA-256", "auth", "00000001")
    assert answer.cnonce == "x,y" and answer.response == "0123abcd"


@pytest.mark.parametrize("value", [
    'Basic YWxhZGRpbjpvcGVuc2VzYW1l',
    'Digest username="ana", realm="r", nonce="n", uri="u"',
    'Digest username="ana, realm="r", nonce="n", uri="u", response="x"',
], ids=["not digest", "no response", "unbalanced quote"])
def test_a_broken_authorization_header_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_authorization(value)


def test_the_challenge_offers_md5_and_sha256_in_the_order_configured() -> None:
    headers = challenge_headers("demo.sip.example", "N", stale=False)
    assert [h[0] for h in headers] == ["WWW-Authenticate"] * 2
    assert "algorithm=MD5" in headers[0][1] and "algorithm=SHA-256" in headers[1][1]
    preferred = challenge_headers("r", "N", stale=False, algorithms=("SHA-256", "MD5"))
    assert "algorithm=SHA-256" in preferred[0][1]
    assert all('qop="auth"' in v and "stale" not in v for _, v in headers)
    assert all("stale=true" in v for _, v in challenge_headers("r", "N", stale=True))


# -- answers to our own nonces -----------------------------------------------------------------

REALM = "demo.sip.example"
URI = "sip:+12125550187@demo.sip.example"
PASSWORD = "correct horse battery"


def _answer(nonce: str, *, nc: str = "00000001", algorithm: str = "MD5",
            password: str = PASSWORD, username: str = "ana") -> DigestResponse:
    draft = DigestResponse(username=username, realm=REALM, nonce=nonce, uri=URI, response="",
                           algorithm=algorithm, qop="auth", nc=nc, cnonce="c0ffee")
    key = ha1(algorithm, username, REALM, password)
    return DigestResponse(**{**{f: getattr(draft, f) for f in draft.__struct_fields__},
                             "response": expected_response(key, draft, "INVITE")})


def _verify(answer: DigestResponse, nonces: Nonces, now_s: float, *,
            known: bool = True) -> Verdict:
    def stored(algorithm: str) -> str | None:
        return ha1(algorithm, "ana", REALM, PASSWORD) if known else None

    return verify(answer, method="INVITE", ha1=stored, nonces=nonces, now_s=now_s)


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_a_correct_answer_to_a_fresh_nonce_passes(algorithm: str) -> None:
    nonces = Nonces(ttl_s=300)
    nonce = nonces.issue(1000.0)
    assert _verify(_answer(nonce, algorithm=algorithm), nonces, 1001.0) is Verdict.OK


def test_a_wrong_password_fails() -> None:
    nonces = Nonces(ttl_s=300)
    answer = _answer(nonces.issue(1000.0), password="wrong horse battery")
    assert _verify(answer, nonces, 1001.0) is Verdict.FAILED


def test_an_unknown_user_fails_like_a_wrong_password() -> None:
    nonces = Nonces(ttl_s=300)
    assert _verify(_answer(nonces.issue(1000.0)), nonces, 1001.0, known=False) is Verdict.FAILED


def test_a_replayed_nonce_count_is_refused() -> None:
    nonces = Nonces(ttl_s=300)
    nonce = nonces.issue(1000.0)
    assert _verify(_answer(nonce), nonces, 1001.0) is Verdict.OK
    assert _verify(_answer(nonce), nonces, 1002.0) is Verdict.FAILED
    assert _verify(_answer(nonce, nc="00000002"), nonces, 1003.0) is Verdict.OK
    assert _verify(_answer(nonce, nc="00000001"), nonces, 1004.0) is Verdict.FAILED


def test_an_expired_nonce_with_a_correct_answer_is_stale() -> None:
    nonces = Nonces(ttl_s=30)
    nonce = nonces.issue(1000.0)
    assert _verify(_answer(nonce), nonces, 1031.0) is Verdict.STALE


def test_an_expired_nonce_with_a_wrong_answer_fails() -> None:
    nonces = Nonces(ttl_s=30)
    answer = _answer(nonces.issue(1000.0), password="wrong horse battery")
    assert _verify(answer, nonces, 1031.0) is Verdict.FAILED


def test_another_process_nonce_is_stale_not_failed() -> None:
    mine, theirs = Nonces(ttl_s=300), Nonces(ttl_s=300)
    assert _verify(_answer(theirs.issue(1000.0)), mine, 1001.0) is Verdict.STALE


def test_a_forged_nonce_fails() -> None:
    nonces = Nonces(ttl_s=300)
    nonce = nonces.issue(1000.0)
    raw = bytearray(base64.urlsafe_b64decode(nonce))
    raw[-1] ^= 1  # the MAC no longer verifies
    forged = base64.urlsafe_b64encode(bytes(raw)).decode()
    assert _verify(_answer(forged), nonces, 1001.0) is Verdict.FAILED
    assert _verify(_answer("not-a-nonce"), nonces, 1001.0) is Verdict.FAILED


def test_a_nonce_whose_slot_was_reused_is_stale() -> None:
    nonces = Nonces(ttl_s=300, slots=4)
    old = nonces.issue(1000.0)
    for _ in range(4):
        nonces.issue(1000.0)
    assert _verify(_answer(old), nonces, 1001.0) is Verdict.STALE


def test_an_algorithm_not_offered_fails() -> None:
    nonces = Nonces(ttl_s=300)
    answer = _answer(nonces.issue(1000.0), algorithm="MD5")
    assert verify(answer, method="INVITE", ha1=lambda a: ha1(a, "ana", REALM, PASSWORD),
                  nonces=nonces, now_s=1001.0, algorithms=("SHA-256",)) is Verdict.FAILED


@pytest.mark.parametrize("change", [
    {"qop": None}, {"algorithm": "MD5-SESS"}, {"nc": None}, {"cnonce": None},
], ids=["rfc 2069 without qop", "sess algorithm", "no nc", "no cnonce"])
def test_answers_without_qop_auth_fail(change: dict[str, object]) -> None:
    nonces = Nonces(ttl_s=300)
    answer = _answer(nonces.issue(1000.0))
    fields = {f: getattr(answer, f) for f in answer.__struct_fields__} | change
    assert _verify(DigestResponse(**fields), nonces, 1001.0) is Verdict.FAILED
