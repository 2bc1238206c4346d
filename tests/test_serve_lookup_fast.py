"""``GET /v1/lookup`` behind the fast path answers exactly as the FastAPI route does.

``provkit serve`` runs the app behind :class:`detect.lookup_fast.LookupFastPath`, which answers
well-formed lookups itself and hands every other request to the route. Whatever the
query and the credentials, both must give the same status, headers that matter and
bytes; and the fast path must really take the plain requests a platform sends.
"""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from provkit.detect.index_bank import index_import

from provkit.server import tokens
from provkit.server.app import create_app
from provkit.server.lookup_fast import _fast_lookup
from tests.fixtures_serve import make_app, make_config, wait_ready

CODES = 400


def _codes(seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(CODES)]


def _near(hexed: str, bits: int) -> str:
    b = bytearray(bytes.fromhex(hexed))
    for i in range(bits):
        b[(7 * i) % 32] ^= 1 << (i % 8)
    return b.hex()


@pytest.fixture(scope="module", params=[False, True], ids=["tokens", "public-read"])
def pair(request, tmp_path_factory):
    """(fast, plain, headers by name, stored codes): the service and the bare app on one
    workspace holding two sets of PDQ codes, some shared."""
    home = tmp_path_factory.mktemp("lookup")
    db = home / "provkit.db"
    alpha, beta = _codes(1), _codes(2)
    beta[:5] = alpha[:5]  # an item in both sets
    for name, codes in (("alpha", alpha), ("beta", beta)):
        f = home / f"{name}.csv"
        f.write_text(
            "id,hash,quality\n"
            + "".join(f"{name}-{i},{h},{30 if i % 50 == 7 else 90}\n" for i, h in enumerate(codes))
        )
        index_import(name, f, db=db)
    headers = {"none": {}}
    for name, scopes in (("reader", ["read"]), ("signer", ["sign"]), ("gone", ["read"])):
        headers[name] = {"Authorization": f"Bearer {tokens.create(name, scopes, db=db).secret}"}
    tokens.revoke("gone", db=db)
    headers["basic"] = {"Authorization": "Basic dXNlcjpwYXNz"}
    headers["empty-bearer"] = {"Authorization": "Bearer "}
    headers["unknown"] = {"Authorization": "Bearer pk_not_a_token"}
    public = request.param
    with (
        TestClient(make_app(home, public_read=public)) as fast,
        TestClient(create_app(make_config(home, public_read=public), refresh=0.2)) as plain,
    ):
        wait_ready(fast)
        wait_ready(plain)
        yield fast, plain, headers, alpha


def _same(fast, plain, url: str, headers: dict):
    a, b = fast.get(url, headers=headers), plain.get(url, headers=headers)
    assert (a.status_code, a.content) == (b.status_code, b.content), url
    assert a.headers.get("content-type") == b.headers.get("content-type"), url
    assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate"), url
    for paging in ("x-provkit-more", "x-provkit-next-offset"):
        assert a.headers.get(paging) == b.headers.get(paging), url
    return a


def test_plain_lookups_are_answered_by_the_fast_path_with_the_routes_bytes(pair):
    fast, plain, headers, alpha = pair
    state = fast.app.state
    for query in (
        f"signal={alpha[3]}",
        f"signal_type=pdq&signal={_near(alpha[3], 9)}",
        f"signal={alpha[10]}&index=beta&index=alpha",
        f"signal={_near(alpha[4], 20)}&max_distance=31&index=alpha",
        f"signal={alpha[7]}",  # quality 30: left out, as HMA does
        f"signal={'0' * 16}&signal_type=phash",
    ):
        scope = {
            "query_string": query.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers["reader"].items()],
        }
        body = _fast_lookup(state, scope)
        assert body is not None, query  # taken by the fast path, not handed on
        answer = _same(fast, plain, "/v1/lookup?" + query, headers["reader"])
        assert answer.status_code == 200 and answer.content == body
    # the server searches with the compiled loop (numba comes with the serve extra)
    assert fast.get("/status").json()["search"] == "compiled (numba)"
    found = fast.get(f"/v1/lookup?signal={_near(alpha[3], 9)}", headers=headers["reader"]).json()
    assert found["alpha"] == [
        {
            "bank_content_id": found["alpha"][0]["bank_content_id"],
            "distance": 9,
            "partner_id": "alpha-3",
            "metadata": {},
        }
    ]
    assert (
        fast.get(f"/v1/lookup?signal={alpha[7]}", headers=headers["reader"]).json()["alpha"] == []
    )


def test_a_revoked_or_unscoped_token_is_refused_on_the_fast_path_too(pair):
    fast, plain, headers, alpha = pair
    url = f"/v1/lookup?signal={alpha[0]}"
    assert _same(fast, plain, url, headers["reader"]).status_code == 200
    for name, status in (
        ("gone", 401),
        ("unknown", 401),
        ("basic", 401),
        ("empty-bearer", 401),
        ("signer", 403),
    ):
        assert _same(fast, plain, url, headers[name]).status_code == status, name
    anonymous = _same(fast, plain, url, headers["none"]).status_code
    assert anonymous == (200 if fast.app.state.config.public_read else 401)


_KEYS = st.sampled_from(
    ["signal", "signal_type", "bank", "index", "max_distance", "limit", "offset", "Signal"]
)


@st.composite
def _queries(draw, alpha):
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        key = draw(_KEYS)
        if key in ("signal", "Signal"):
            value = draw(
                st.one_of(
                    st.sampled_from(alpha[:20]).map(lambda h: h),
                    st.sampled_from(alpha[:20]).map(lambda h: _near(h, 13)),
                    st.sampled_from(alpha[:3]).map(str.upper),
                    st.text("0123456789abcdefg", min_size=0, max_size=70),
                    st.just("%30" * 64),
                    st.just("+" + "0" * 63),
                )
            )
        elif key == "signal_type":
            value = draw(st.sampled_from(["pdq", "phash", "dhash", "md5", "", "PDQ"]))
        elif key in ("bank", "index"):  # index: the old spelling, kept one release
            value = draw(st.sampled_from(["alpha", "beta", "gamma", "", "al%70ha"]))
        elif key == "max_distance":
            value = draw(
                st.sampled_from(
                    ["0", "16", "17", "31", "64", "65", "256", "257", "031", "-1", "x", ""]
                )
            )
        elif key in ("limit", "offset"):
            value = draw(st.sampled_from(["0", "1", "2", "100", "1000", "1001", "x", ""]))
        else:
            value = draw(st.text("abc", max_size=3))
        parts.append(key + draw(st.sampled_from(["=", "=", "=", ""])) + value)
    query = "&".join(parts)
    return draw(st.sampled_from(["", "&"])) + query + draw(st.sampled_from(["", "&"]))


@settings(
    max_examples=250, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(data=st.data())
def test_any_query_and_credentials_get_the_routes_answer(pair, data):
    fast, plain, headers, alpha = pair
    query = data.draw(_queries(alpha))
    who = data.draw(st.sampled_from(sorted(headers)))
    answer = _same(fast, plain, "/v1/lookup?" + query, headers[who])
    assert answer.status_code < 500, (query, answer.text)
