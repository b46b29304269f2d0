"""Bob (and a guest) attack Alice's data through every request feature, on every engine.

The scenario (``World``) is a small social app: public user profiles with hidden emails,
private posts (an owner, a hidden ``secret``, hidden relations ``reviewer`` and
``watchers``, ``members``, ``tags``, ``score``) with body rules on writes, comments
ruled through their post, a superuser-only ``vault`` pointing at posts, public ``likes``
of private posts, a view over posts and a second auth collection ``members`` with open
sign-up. Each attempt asserts the precise refusal (or the empty / unchanged answer), and
every test ends by checking, straight from the database (more than a superuser's API
read shows: hidden values, password hashes, token keys), that no stored row changed
(Alice's, Bob's, the vault's, the superusers', the API keys') and that no row was added
or removed anywhere.

An attempt that succeeds today is a hole: it is marked ``xfail(strict=True)`` with the
reason ``HOLE: ...`` and listed in the report that came with this file.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests.security.world import GUEST_SECRETS, SECRETS, Actor, World, assert_error


@pytest.fixture(scope="module")
async def world(engine: Any, tmp_path_factory: pytest.TempPathFactory):
    w = World(engine, tmp_path_factory.mktemp(f"attack_{engine.name}"))
    await w.open()
    try:
        yield w
    finally:
        await w.close()


@pytest.fixture
async def w(world: World):
    """The module's world for one test; rebuilt afterwards if the test left it changed
    (a hole that wrote something), so later tests start from the same state."""
    world.checked = False
    yield world
    if world.checked:
        return
    try:
        await world.assert_intact()
    except AssertionError:
        await world.rebuild()



# --------------------------------------------------------------------------- checks


def who(w: World, name: str) -> Actor:
    return {"bob": w.bob, "guest": w.guest, "alice": w.alice}[name]


async def token_keys(w: World) -> list[str]:
    rows = await w.rows()
    return [r["tokenKey"] for name in ("users", "members", "_superusers") for r in rows[name].values()]


async def assert_no_leak(w: World, res: httpx.Response, actor: Actor) -> None:
    text = res.text
    found = [s for s in (GUEST_SECRETS if actor is w.guest else SECRETS) if s in text]
    found += [k for k in await token_keys(w) if k in text]
    assert not found, f"leaked {found} in {res.status_code} {text[:400]}"



def names_of(w: World, res: httpx.Response) -> list[str]:
    """The items of a list answer by scenario name (``A1``, ``alice`` ...), in order."""
    assert res.status_code == 200, res.text[:300]
    reverse = {v: k for k, v in w.ids.items()}
    reverse.update({i: e.split("@")[0] for e, i in w.users.items()})
    return [reverse.get(item["id"], item["id"]) for item in res.json()["items"]]


async def listing(w: World, collection: str, actor: Actor, **params: str) -> httpx.Response:
    params = {k: w.fill(v) for k, v in params.items()}
    res = await w.call("GET", f"/api/collections/{collection}/records", actor, params={"perPage": "100", **params})
    await assert_no_leak(w, res, actor)
    return res


# --------------------------------------------------------------------------- holes
# Attempts that succeed today, by test id (without the engine): each runs as
# ``xfail(strict=True)``, so the suite stays green until the hole is fixed, and then
# asks for its mark to be removed.
HOLES: dict[str, str] = {}


def table(rows: list[Any], ids: list[str]) -> list[Any]:
    """``rows`` as pytest params named ``ids``, the known holes marked xfail."""
    out = []
    for row, name in zip(rows, ids, strict=True):
        values = row.values if hasattr(row, "values") else row
        marks = [pytest.mark.xfail(strict=True, reason=HOLES[name])] if name in HOLES else []
        out.append(pytest.param(*values, id=name, marks=marks))
    USED.update(ids)
    return out


USED: set[str] = set()


# --------------------------------------------------------------------------- filter
FILTERS = [
    # posts: Bob lists only B1, whatever the filter says.
    ("posts", "bob", "owner = '{alice}'", []),
    ("posts", "bob", "owner != '{bob}'", []),
    ("posts", "bob", "id = '{A1}' || id = '{A2}'", []),
    ("posts", "bob", "title ~ 'alice' || score > 6", []),
    ("posts", "bob", "owner = '{alice}' || members:length > 0", ["B1"]),
    ("posts", "bob", "tags:each ?= 'private' || tags ?= 'draft'", []),
    ("posts", "bob", "secret ~ 'alice'", 400),
    ("posts", "bob", "secret:lower ~ 'a'", 400),
    ("posts", "bob", "secret:length > 0", 400),
    ("posts", "bob", "owner.password ~ 'argon'", 400),
    ("posts", "bob", "owner.tokenKey != ''", 400),
    ("posts", "bob", "members.tokenKey ?!= ''", 400),
    ("posts", "bob", "members.password ?!= ''", 400),
    ("posts", "bob", "vault_via_post.code ?~ 'VAULT'", 400),
    ("posts", "bob", "vault_via_post.id ?!= ''", 400),
    ("posts", "bob", "members.posts_via_owner.vault_via_post.code ?~ 'V'", 400),
    ("posts", "bob", "comments_via_post.post.secret ?~ 'b'", 400),
    ("posts", "bob", "members.likes_via_user.post.secret ?~ 'a'", 400),
    ("posts", "bob", "@collection.vault.code ?~ 'V'", 403),
    ("posts", "bob", "@request.auth.id != ''", 403),
    ("posts", "bob", "@request.body.x = 1 || id != ''", 403),
    ("posts", "bob", "members.email ?~ 'bob'", []),  # a hidden email, his own too (PocketBase)
    ("posts", "bob", "members.email ?~ 'alice'", []),
    ("posts", "bob", "comments_via_post.author.name ?= 'Dan'", ["B1"]),
    ("posts", "bob", "comments_via_post.author.email ?~ 'dan'", []),
    ("posts", "bob", "likes_via_post.user.email ?~ 'alice'", []),
    ("posts", "bob", "members.posts_via_owner.title ?~ 'alice-d'", []),
    ("posts", "bob", "members.posts_via_owner.score ?> 40", []),
    ("posts", "bob", "members.comments_via_author.body ?~ 'alice-priv'", []),
    ("posts", "bob", "members.likes_via_user.post.title ?~ 'alice-d'", []),
    ("posts", "bob", "reviewer = '{yuki}'", 400),
    ("posts", "bob", "reviewer.name = 'Yuki'", 400),
    ("posts", "bob", "watchers:each ?= '{kim}'", 400),
    ("posts", "bob", "watchers:length > 0", 400),
    ("posts", "bob", "watchers.name ?= 'Kim'", 400),
    ("posts", "guest", "owner = '{alice}' || owner = '{bob}' || id != ''", []),
    ("posts", "guest", "members.email ?~ 'a'", []),
    # comments: Bob sees the four on his post.
    ("comments", "bob", "post = '{A1}' || post = '{A2}'", []),
    ("comments", "bob", "post.title ~ 'alice'", []),
    ("comments", "bob", "post.secret ~ 'b'", 400),
    ("comments", "bob", "post.vault_via_post.code ?~ 'V'", 400),
    ("comments", "bob", "author.name = 'Alice'", ["CAB"]),
    ("comments", "bob", "author.email ~ 'alice'", []),
    ("comments", "bob", "author.posts_via_owner.title ?~ 'alice-d'", []),
    ("comments", "bob", "author.posts_via_owner.secret ?~ 'a'", 400),
    ("comments", "guest", "id != ''", []),
    # likes are public; the posts they point at are not.
    ("likes", "bob", "post.title ~ 'alice'", []),
    ("likes", "bob", "post.score > 40", []),
    ("likes", "bob", "post.owner = '{alice}'", []),
    ("likes", "bob", "post.tags ?= 'private'", []),
    ("likes", "bob", "post.comments_via_post.body ?~ 'alice-priv'", []),
    ("likes", "bob", "post.secret ~ 'a'", 400),
    ("likes", "bob", "post.vault_via_post.code ?~ 'V'", 400),
    ("likes", "bob", "user.email ~ 'alice'", []),
    ("likes", "guest", "post.title != '' || post.owner != ''", []),
    # users: public profiles, hidden emails and everything behind them.
    ("users", "bob", "email ~ 'alice' || email ~ 'yuki'", []),
    ("users", "bob", "tokenKey != ''", 400),
    ("users", "bob", "password != ''", 400),
    ("users", "bob", "posts_via_owner.title ?~ 'bob'", ["bob"]),
    ("users", "bob", "posts_via_owner.title ?~ 'alice-d'", []),
    ("users", "bob", "posts_via_owner.secret ?~ 'a'", 400),
    ("users", "bob", "posts_via_members.title ?~ 'alice-p'", []),
    ("users", "bob", "comments_via_author.body ?~ 'alice-priv'", []),
    ("users", "bob", "posts_via_owner.vault_via_post.code ?~ 'V'", 400),
    ("users", "bob", "posts_via_reviewer.id ?!= ''", 400),
    ("users", "bob", "post_view_via_owner.secret ?~ 'a'", 400),
    ("users", "bob", "post_view_via_owner.title ?~ 'alice-d'", []),
    ("users", "guest", "email ~ '@'", []),
    ("users", "guest", "posts_via_owner.score ?> 0", []),
    # the view keeps the hidden field hidden and the owner rule.
    ("post_view", "bob", "owner = '{alice}' || score > 6", []),
    ("post_view", "bob", "secret ~ 'a'", 400),
    ("post_view", "bob", "owner.email ~ 'alice'", []),
    ("vault", "bob", "post = '{A1}'", 403),
    ("vault", "guest", "id != ''", 403),
    ("members", "bob", "id != ''", []),
]


@pytest.mark.parametrize("collection,actor,filter_,expected",
                         table(FILTERS, [f"{c}-{a}-{f}" for c, a, f, _ in FILTERS]))
async def test_filter_reveals_nothing(w, collection, actor, filter_, expected):
    res = await listing(w, collection, who(w, actor), filter=filter_)
    if isinstance(expected, int):
        assert_error(res, expected)
    else:
        assert sorted(names_of(w, res)) == sorted(expected)
    await w.assert_intact()


# A hidden value must not decide whether a record matches: each template is tried with a
# value that is true of the hidden data and one that is false; the answers must be equal.
# Each template is tried with a value that is true of a hidden value and one that is
# false; whether the records holding it (``subjects``) match must not depend on which.
HIDDEN_EMAILS = "alice dan kim pat yuki"
ORACLES = [
    ("users", "bob", "email < '{v}'", "b", "a", HIDDEN_EMAILS),
    ("users", "bob", "email >= '{v}'", "a", "b", HIDDEN_EMAILS),
    ("users", "bob", "email ~ '{v}'", "alice", "zzzz", HIDDEN_EMAILS),
    ("users", "bob", "email !~ '{v}'", "zzzz", "alice", HIDDEN_EMAILS),
    ("users", "bob", "email = '{v}'", "alice@example.com", "zed@example.com", HIDDEN_EMAILS),
    ("users", "bob", "email != '{v}'", "zed@example.com", "alice@example.com", HIDDEN_EMAILS),
    ("users", "bob", "email:lower = '{v}'", "alice@example.com", "zed@example.com", HIDDEN_EMAILS),
    ("users", "bob", "email ~ '{v}' || name = 'nobody'", "a%e@ex", "q%z@ex", HIDDEN_EMAILS),
    ("users", "bob", "email > '{v}' && email < 'b'", "alice", "b", HIDDEN_EMAILS),
    ("users", "bob", "email ?= '{v}'", "dan@example.com", "zed@example.com", HIDDEN_EMAILS),
    ("users", "guest", "email < '{v}'", "c", "a", f"{HIDDEN_EMAILS} bob"),
    ("users", "guest", "email ~ '{v}'", "bob@", "zzzz", f"{HIDDEN_EMAILS} bob"),
    ("users", "bob", "posts_via_owner.title ?~ '{v}'", "alice-d", "zzzz", "alice"),
    ("users", "bob", "posts_via_owner.score ?> {v}", "40", "1000", "alice"),
    ("users", "bob", "posts_via_owner.members:length ?> {v}", "1", "9", "alice"),
    ("users", "bob", "posts_via_owner.tags:each ?= '{v}'", "private", "zzz", "alice"),
    ("users", "bob", "posts_via_members.title ?~ '{v}'", "alice-p", "zzzz", "bob"),
    ("users", "bob", "comments_via_author.body ?~ '{v}'", "alice-private", "zzzz", "alice"),
    ("users", "bob", "likes_via_user.post.score ?> {v}", "40", "1000", "alice bob"),
    ("users", "bob", "post_view_via_owner.score ?> {v}", "40", "1000", "alice"),
    ("comments", "bob", "author.email ~ '{v}'", "alice", "zzzz", "CAB CY CD"),
    ("comments", "bob", "author.email < '{v}'", "b", "a", "CAB CY CD"),
    ("comments", "bob", "author.posts_via_owner.score ?> {v}", "40", "1000", "CAB"),
    ("posts", "bob", "members.email ?~ '{v}'", "alice", "zzzz", "B1"),
    ("posts", "bob", "comments_via_post.author.email ?~ '{v}'", "dan", "zzzz", "B1"),
    ("posts", "bob", "likes_via_post.user.email ?< '{v}'", "b", "a", "B1"),
    ("posts", "bob", "members.posts_via_owner.title ?~ '{v}'", "alice-d", "zzzz", "B1"),
    ("posts", "bob", "members.posts_via_owner.score ?> {v}", "40", "1000", "B1"),
    ("posts", "bob", "members.comments_via_author.body ?~ '{v}'", "alice-private", "zzzz", "B1"),
    ("posts", "bob", "members.likes_via_user.post.title ?~ '{v}'", "alice-d", "zzzz", "B1"),
    ("likes", "bob", "post.title ~ '{v}'", "alice-d", "zzzz", "LA LBA"),
    ("likes", "bob", "post.score > {v}", "40", "1000", "LA LBA"),
    ("likes", "bob", "post.owner = '{v}'", "{alice}", "nobody", "LA LBA"),
    ("likes", "bob", "post.tags ?= '{v}'", "private", "zzz", "LA LBA"),
    ("likes", "bob", "post.members:length > {v}", "1", "9", "LA LBA"),
    ("likes", "guest", "post.owner.email ~ '{v}'", "alice", "zzzz", "LA LBA LB LAB"),
    ("post_view", "bob", "owner.email ~ '{v}'", "alice", "zzzz", "B1"),
]


@pytest.mark.parametrize("collection,actor,template,true_value,false_value,subjects",
                         table(ORACLES, [f"{c}-{a}-{t}" for c, a, t, *_ in ORACLES]))
async def test_filter_is_no_oracle(w, collection, actor, template, true_value, false_value, subjects):
    actor = who(w, actor)
    answers = []
    for value in (true_value, false_value):
        res = await listing(w, collection, actor, filter=template.replace("{v}", w.fill(value)))
        answers.append([n for n in sorted(names_of(w, res)) if n in subjects.split()])
    assert answers[0] == answers[1], f"the hidden value decides the match: {answers}"
    await w.assert_intact()


# --------------------------------------------------------------------------- sort
SORT_REFUSED = [
    ("posts", "secret", 400), ("posts", "-secret,id", 400), ("posts", "secret:lower", 400),
    ("posts", "owner.tokenKey", 400), ("posts", "owner.password", 400),
    ("posts", "vault_via_post.code", 400), ("posts", "@collection.vault.code", 403),
    ("posts", "@request.auth.id", 403), ("likes", "post.secret", 400), ("posts", "reviewer", 400),
    ("posts", "-reviewer.name", 400), ("users", "posts_via_reviewer.id", 400),
    ("likes", "post.vault_via_post.code", 400), ("users", "tokenKey", 400), ("users", "password", 400),
    ("users", "posts_via_owner.secret", 400), ("comments", "post.secret", 400), ("post_view", "secret", 400),
]


@pytest.mark.parametrize("collection,sort,status", table(SORT_REFUSED, [f"{c}-{s}" for c, s, _ in SORT_REFUSED]))
async def test_sort_by_hidden_or_locked_values_is_refused(w, collection, sort, status):
    assert_error(await listing(w, collection, w.bob, sort=sort), status)
    await w.assert_intact()


@pytest.mark.parametrize("actor", ["bob", "guest"])
async def test_sorting_by_hidden_emails_follows_no_email_order(w, actor):
    """Names sort like the emails (Alice < Dan < Kim < Pat < Yuki): a secondary sort by
    name *descending* shows whether the hidden emails ordered anything."""
    hidden = ["alice", "dan", "kim", "pat", "yuki"]
    for sort, if_hidden in (("email,-name", hidden[::-1]), ("-email,name", hidden),
                            ("email:lower,-name", hidden[::-1]), ("-email:lower,name", hidden)):
        res = await listing(w, "users", who(w, actor), sort=sort)
        order = [n for n in names_of(w, res) if n != "bob"]
        assert order == if_hidden, f"sort={sort}: {order} (the email order is {hidden})"
    await w.assert_intact()


async def test_sorting_through_relations_follows_no_hidden_order(w):
    # Comments on B1 by Yuki, Dan and Alice: their emails are hidden from Bob.
    res = await listing(w, "comments", w.bob, sort="author.email,-author.name", filter="author != '{bob}'")
    assert names_of(w, res) == ["CY", "CD", "CAB"]
    res = await listing(w, "comments", w.bob, sort="-author.email,author.name", filter="author != '{bob}'")
    assert names_of(w, res) == ["CAB", "CD", "CY"]
    # Likes of Alice's posts (scores 42 and 7) must sort as unknown scores: the order of
    # LA and LBA follows the id tie-break alone.
    orders = []
    for sort in ("post.score,id", "post.score,-id", "-post.title,id", "-post.title,-id"):
        names = [n for n in names_of(w, await listing(w, "likes", w.bob, sort=sort)) if n in ("LA", "LBA")]
        orders.append(names)
    assert orders[0] == orders[1][::-1] and orders[2] == orders[3][::-1], orders
    await w.assert_intact()


# --------------------------------------------------------------------------- cursor
CURSOR_REFUSED = [
    ("users", "bob", "email"), ("users", "guest", "-email"), ("users", "bob", "name,email"),
    ("users", "bob", "tokenKey"), ("users", "bob", "password"), ("posts", "bob", "secret"),
    ("posts", "bob", "owner.email"), ("likes", "bob", "post.score"), ("post_view", "bob", "secret"),
    ("likes", "bob", "@random"),
]


@pytest.mark.parametrize("collection,actor,sort", table(CURSOR_REFUSED, [f"{c}-{a}-{s}" for c, a, s in CURSOR_REFUSED]))
async def test_cursor_refuses_hidden_sort_keys(w, collection, actor, sort):
    body = assert_error(await listing(w, collection, who(w, actor), sort=sort, cursor="", perPage="1"), 400)
    assert body["message"].startswith("Invalid sort")
    await w.assert_intact()


def b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def test_cursor_walk_carries_nothing_hidden_and_forgeries_fail(w):
    import orjson

    # A walk over the users by name: every page, and every token, free of hidden values.
    seen, token, tokens = [], "", []
    while token is not None:
        res = await listing(w, "users", w.bob, sort="name", perPage="1", cursor=token)
        seen += names_of(w, res)
        token = res.json()["nextCursor"]
        if token:
            tokens.append(token)
            decoded = unb64(token.split(".")[0]).decode()
            assert "@example.com" not in decoded and "$argon2" not in decoded, decoded
    assert seen == ["alice", "bob", "dan", "kim", "pat", "yuki"]
    # Bob's posts through a cursor: B1 only, whatever the page size.
    res = await listing(w, "posts", w.bob, sort="-score", perPage="1", cursor="")
    assert names_of(w, res) == ["B1"] and res.json()["nextCursor"] is None
    # Forged tokens: a probe of the users' emails, a token re-signed with nothing, a token
    # moved to another collection, a token with its sort changed.
    genuine = tokens[0]
    payload = orjson.loads(unb64(genuine.split(".")[0]))
    mac = genuine.split(".")[1]
    probe = b64(orjson.dumps({"k": [["email", False], ["id", False]], "v": ["b", ""]}))
    name_probe = b64(orjson.dumps({**payload, "v": ["", ""]}))
    forged = [
        ("users", "email", f"{probe}.{mac}"), ("users", "email", probe), ("users", "name", f"{name_probe}.{mac}"),
        ("users", "name", name_probe), ("users", "name", f"{genuine.split('.')[0]}.{b64(b'x' * 18)}"),
        ("likes", "name", genuine), ("users", "-name", genuine), ("users", "name", "x" * 5000),
        ("users", "name", "%00"), ("users", "name", "eyJrIjpbXX0"),
    ]
    for collection, sort, cursor in forged:
        res = await listing(w, collection, w.bob, sort=sort, perPage="1", cursor=cursor)
        assert res.status_code == 400, (collection, sort, cursor[:60], res.text[:200])
    await w.assert_intact()


# --------------------------------------------------------------------------- expand
EXPANDS = [
    # (actor, collection, record or None for the list, expand, what may be embedded)
    ("bob", "users", "alice", "posts_via_owner,posts_via_members,comments_via_author,likes_via_user.post",
     {"comments_via_author": ["CAB"], "likes_via_user": ["LA", "LAB"], "posts_via_members": ["B1"]}),
    # A path through the locked vault adds nothing, not even its first levels (PocketBase).
    ("bob", "users", "bob", "posts_via_members,posts_via_owner.vault_via_post,likes_via_user.post",
     {"posts_via_members": ["B1"], "likes_via_user": ["LB", "LBA"]}),
    ("bob", "posts", "B1", "vault_via_post,members.posts_via_owner,members.comments_via_author.post",
     {"members": ["bob", "alice"]}),
    ("bob", "posts", "B1", "comments_via_post.author.posts_via_owner,likes_via_post.user",
     {"comments_via_post": ["CAB", "CB", "CY", "CD"], "likes_via_post": ["LB", "LAB"]}),
    ("bob", "likes", None, "post.owner,post.vault_via_post,user", {"post": ["B1", "B1"], "user": 4}),
    ("bob", "comments", "CAB", "post.vault_via_post,author.posts_via_owner", {"author": ["alice"]}),
    ("bob", "post_view", "B1", "owner.posts_via_owner", {"owner": ["bob"]}),
    ("guest", "users", None, "posts_via_owner,comments_via_author,likes_via_user.post", {"likes_via_user": 4}),
    ("guest", "likes", None, "post,user", {"user": 4}),
    # reviewer is a hidden relation: no record may show whom it points at, not even
    # through the back-relation (B1's reviewer is Yuki).
    ("bob", "users", None, "posts_via_reviewer", {}),
    ("bob", "users", None, "posts_via_watchers", {}),
    ("bob", "users", "yuki", "posts_via_reviewer", {}),
    ("bob", "users", None, "post_view_via_owner", {"post_view_via_owner": ["B1"]}),
    ("bob", "posts", "B1", "reviewer", {}),
]


def embedded(w: World, record: dict[str, Any]) -> dict[str, list[str]]:
    """The names of the records embedded directly under ``record`` by key."""
    reverse = {v: k for k, v in w.ids.items()}
    reverse.update({i: e.split("@")[0] for e, i in w.users.items()})
    out: dict[str, list[str]] = {}
    for key, value in record.get("expand", {}).items():
        out[key] = [reverse.get(r["id"], r["id"]) for r in (value if isinstance(value, list) else [value])]
    return out


@pytest.mark.parametrize("actor,collection,record,expand,allowed",
                         table(EXPANDS, [f"{a}-{c}-{r}-{e}" for a, c, r, e, _ in EXPANDS]))
async def test_expand_embeds_only_viewable_records(w, actor, collection, record, expand, allowed):
    actor = who(w, actor)
    if record is None:
        res = await listing(w, collection, actor, expand=expand)
        records = res.json()["items"]
    else:
        rid = w.fill("{" + record + "}")
        res = await w.call("GET", f"/api/collections/{collection}/records/{rid}", actor, params={"expand": expand})
        await assert_no_leak(w, res, actor)
        assert res.status_code == 200, res.text
        records = [res.json()]
    got: dict[str, list[str]] = {}
    for rec in records:
        for key, names in embedded(w, rec).items():
            got.setdefault(key, []).extend(names)
    counted = {k: (len(v) if isinstance(allowed.get(k), int) else sorted(v)) for k, v in got.items()}
    assert counted == {k: (v if isinstance(v, int) else sorted(v)) for k, v in allowed.items()}
    # Nothing locked or private anywhere in the tree, at any depth.
    for item in walk(records):
        assert item.get("collectionName") not in ("vault", "_superusers", "members"), item
        if item.get("collectionName") in ("posts", "post_view"):
            assert item["owner"] == w.bob.id and actor is w.bob and "secret" not in item, item
        if item.get("collectionName") == "comments":
            assert item["post"] == w.ids["B1"] and actor is w.bob, item
    await w.assert_intact()


def walk(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every record embedded under ``records``, at any depth."""
    out = []
    for record in records:
        for value in (record.get("expand") or {}).values():
            children = value if isinstance(value, list) else [value]
            out += children + walk(children)
    return out


# --------------------------------------------------------------------------- fields
FIELDS = [
    ("posts", "B1", "secret"), ("posts", "B1", "*,secret"), ("posts", "B1", "secret:excerpt(200,true)"),
    ("posts", "B1", "id,expand.vault_via_post.code"), ("posts", "B1", "expand.members.email,expand.members.tokenKey"),
    ("posts", "B1", "*,expand.*.email,expand.*.password"), ("users", "alice", "email,password,tokenKey"),
    ("users", "alice", "*,email:excerpt(100)"), ("users", None, "email,password,tokenKey,id"),
    ("likes", None, "*,expand.post.secret,expand.post.title,expand.user.email"),
    ("post_view", "B1", "secret,title"), ("posts", "B1", "reviewer,expand.reviewer"),
    ("comments", None, "expand.post.secret,expand.author.email"),
]


@pytest.mark.parametrize("collection,record,fields", table(FIELDS, [f"{c}-{r}-{f}" for c, r, f in FIELDS]))
async def test_fields_cannot_pick_hidden_values(w, collection, record, fields):
    expand = "members,vault_via_post,post,user,author" if "expand" in fields else ""
    for actor in (w.bob, w.guest):
        if record is None:
            res = await listing(w, collection, actor, fields=fields, expand=expand)
        else:
            rid = w.fill("{" + record + "}")
            res = await w.call("GET", f"/api/collections/{collection}/records/{rid}", actor,
                               params={"fields": fields, "expand": expand})
            await assert_no_leak(w, res, actor)
        assert res.status_code in (200, 404), res.text[:200]
        for key in ("secret", "password", "tokenKey", '"code"', '"reviewer"'):
            assert key not in res.text, (key, res.text[:300])
    await w.assert_intact()


# --------------------------------------------------------------------------- aggregates
AGG_REFUSED = [
    ("posts", "bob", {"groupBy": "secret"}, 400), ("posts", "bob", {"min": "secret"}, 400),
    ("posts", "bob", {"max": "owner.email"}, 400), ("posts", "bob", {"groupBy": "owner.email"}, 400),
    ("posts", "bob", {"min": "owner.tokenKey"}, 400), ("posts", "bob", {"max": "owner.password"}, 400),
    ("posts", "bob", {"groupBy": "members"}, 400), ("posts", "bob", {"groupBy": "members.email"}, 400),
    ("posts", "bob", {"groupBy": "vault_via_post.code"}, 400),
    ("posts", "bob", {"filter": "vault_via_post.code ?~ 'V'"}, 400),
    ("posts", "bob", {"filter": "secret ~ 'a'"}, 400), ("posts", "bob", {"groupBy": "reviewer"}, 400),
    ("posts", "bob", {"max": "reviewer.name"}, 400), ("users", "bob", {"groupBy": "posts_via_reviewer.id"}, 400),
    ("posts", "bob", {"filter": "@request.auth.id != ''"}, 403),
    ("posts", "bob", {"filter": "@collection.vault.code ?~ 'V'"}, 403),
    ("vault", "bob", {"groupBy": "code"}, 403), ("vault", "guest", {}, 403),
    ("users", "bob", {"groupBy": "email"}, 400), ("users", "guest", {"min": "email"}, 400),
    ("users", "bob", {"max": "tokenKey"}, 400), ("users", "bob", {"groupBy": "posts_via_owner.title"}, 400),
    ("likes", "bob", {"min": "post.secret"}, 400), ("likes", "bob", {"groupBy": "user.email"}, 400),
    ("likes", "bob", {"groupBy": "post.vault_via_post.code"}, 400),
    ("comments", "bob", {"groupBy": "author.email"}, 400), ("comments", "bob", {"max": "post.secret"}, 400),
    ("post_view", "bob", {"groupBy": "secret"}, 400), ("post_view", "bob", {"max": "secret"}, 400),
    ("_superusers", "bob", {}, 403), ("members", "bob", {"min": "email"}, 400),
]


@pytest.mark.parametrize("collection,actor,params,status",
                         table(AGG_REFUSED, [f"{c}-{a}-{p}" for c, a, p, _ in AGG_REFUSED]))
async def test_aggregates_refuse_hidden_values(w, collection, actor, params, status):
    actor = who(w, actor)
    res = await w.call("GET", f"/api/collections/{collection}/aggregate", actor, params=params)
    await assert_no_leak(w, res, actor)
    assert_error(res, status)
    await w.assert_intact()


AGG_COUNTED = [
    # Only the rows the caller may list count; related values the caller may not view
    # are missing (they group with "" or 0 and take no part in min/max/avg).
    ("posts", "bob", {"groupBy": "owner", "sum": "score", "max": "score"},
     [{"group": {"owner": "{bob}"}, "count": 1, "sum": {"score": 5}, "max": {"score": 5}}]),
    ("posts", "guest", {"sum": "score", "max": "title"}, [{"group": {}, "count": 0, "sum": {"score": 0},
                                                          "max": {"title": None}}]),
    ("likes", "bob", {"groupBy": "post.title", "max": "post.score", "sort": "post.title"},
     [{"group": {"post.title": ""}, "count": 2, "max": {"post.score": None}},
      {"group": {"post.title": "bob-notes"}, "count": 2, "max": {"post.score": 5}}]),
    ("likes", "bob", {"groupBy": "post.owner", "sum": "post.score", "min": "post.tags"}, 400),
    ("likes", "bob", {"avg": "post.score", "min": "post.score", "max": "post.title"},
     [{"group": {}, "count": 4, "avg": {"post.score": 5}, "min": {"post.score": 5},
       "max": {"post.title": "bob-notes"}}]),
    ("likes", "guest", {"groupBy": "post.owner", "max": "post.score"},
     [{"group": {"post.owner": ""}, "count": 4, "max": {"post.score": None}}]),
    ("comments", "bob", {"groupBy": "post.title", "sum": "post.score"},
     [{"group": {"post.title": "bob-notes"}, "count": 4, "sum": {"post.score": 20}}]),
    ("post_view", "bob", {"sum": "score", "max": "title"},
     [{"group": {}, "count": 1, "sum": {"score": 5}, "max": {"title": "bob-notes"}}]),
    ("users", "guest", {"groupBy": "verified", "max": "name"},
     [{"group": {"verified": False}, "count": 6, "max": {"name": "Yuki"}}]),
]


@pytest.mark.parametrize("collection,actor,params,expected",
                         table(AGG_COUNTED, [f"{c}-{a}-{p}" for c, a, p, _ in AGG_COUNTED]))
async def test_aggregates_count_only_what_the_caller_may_read(w, collection, actor, params, expected):
    actor = who(w, actor)
    res = await w.call("GET", f"/api/collections/{collection}/aggregate", actor, params=params)
    await assert_no_leak(w, res, actor)
    if isinstance(expected, int):
        assert_error(res, expected)
    else:
        assert res.status_code == 200, res.text
        assert res.json()["items"] == w.fill_any(expected)
    await w.assert_intact()


# --------------------------------------------------------------------------- writes
NEW_PASSWORD = {"password": "pwned-password-1", "passwordConfirm": "pwned-password-1"}
# (name, actor, method, url, body, status). Every one must be refused and write nothing.
WRITES = [
    ("post-for-alice", "bob", "POST", "posts", {"owner": "{alice}", "title": "planted"}, 400),
    ("post-owner+", "bob", "POST", "posts", {"owner": "{bob}", "owner+": "{alice}", "title": "planted"}, 400),
    ("post-score+", "bob", "POST", "posts", {"owner": "{bob}", "score+": 500}, 400),
    ("post-score", "bob", "POST", "posts", {"owner": "{bob}", "score": 500}, 400),
    ("post-taken-id", "bob", "POST", "posts", {"owner": "{bob}", "id": "{A1}"}, 400),
    ("post-guest", "guest", "POST", "posts", {"owner": "{alice}", "title": "planted"}, 400),
    ("A1-title", "bob", "PATCH", "posts/{A1}", {"title": "pwned"}, 404),
    ("A1-score+", "bob", "PATCH", "posts/{A1}", {"score+": 1}, 404),
    ("A1-members+", "bob", "PATCH", "posts/{A1}", {"members+": "{bob}"}, 404),
    ("A1-+members", "bob", "PATCH", "posts/{A1}", {"+members": "{bob}"}, 404),
    ("A1-owner", "bob", "PATCH", "posts/{A1}", {"owner": "{bob}"}, 404),
    ("A1-secret", "bob", "PATCH", "posts/{A1}", {"secret": "pwned"}, 404),
    ("A1-guest", "guest", "PATCH", "posts/{A1}", {"members+": "{bob}"}, 404),
    ("A2-member-bob", "bob", "PATCH", "posts/{A2}", {"members-": "{alice}"}, 404),
    ("B1-owner", "bob", "PATCH", "posts/{B1}", {"owner": "{alice}"}, 404),
    ("B1-owner+", "bob", "PATCH", "posts/{B1}", {"owner+": "{alice}"}, 404),
    ("B1-owner-", "bob", "PATCH", "posts/{B1}", {"owner-": "{bob}"}, 400),  # owner is required
    ("B1-score+", "bob", "PATCH", "posts/{B1}", {"score+": 500}, 404),
    ("B1-score-", "bob", "PATCH", "posts/{B1}", {"score-": -500}, 404),
    ("B1-members+", "bob", "PATCH", "posts/{B1}", {"members+": ["{yuki}", "{kim}"]}, 404),
    ("B1-+members", "bob", "PATCH", "posts/{B1}", {"+members": ["{yuki}", "{kim}"]}, 404),
    ("B1-members-", "bob", "PATCH", "posts/{B1}", {"members-": "{bob}"}, 404),
    ("B1-members-all", "bob", "PATCH", "posts/{B1}", {"members-": ["{bob}", "{alice}"]}, 404),
    ("B1-members", "bob", "PATCH", "posts/{B1}", {"members": ["{alice}"]}, 404),
    ("B1-id", "bob", "PATCH", "posts/{B1}", {"id": "{A1}"}, 400),
    ("A1-delete", "bob", "DELETE", "posts/{A1}", None, 404),
    ("A1-delete-guest", "guest", "DELETE", "posts/{A1}", None, 404),
    ("comment-on-A1", "bob", "POST", "comments", {"post": "{A1}", "author": "{bob}", "body": "x"}, 400),
    ("comment-as-alice", "bob", "POST", "comments", {"post": "{B1}", "author": "{alice}", "body": "x"}, 400),
    ("comment-post+", "bob", "POST", "comments", {"post": "{B1}", "post+": "{A1}", "author": "{bob}"}, 400),
    ("comment-author+", "bob", "POST", "comments", {"post": "{B1}", "author": "{bob}", "author+": "{alice}"}, 400),
    ("CAB-body", "bob", "PATCH", "comments/{CAB}", {"body": "pwned"}, 404),
    ("CB-post", "bob", "PATCH", "comments/{CB}", {"post": "{A1}"}, 404),
    ("CB-post+", "bob", "PATCH", "comments/{CB}", {"post+": "{A1}"}, 404),
    ("CB-author+", "bob", "PATCH", "comments/{CB}", {"author+": "{alice}"}, 404),
    ("CAB-delete", "bob", "DELETE", "comments/{CAB}", None, 404),
    ("CA1-delete", "bob", "DELETE", "comments/{CA1}", None, 404),
    ("like-as-alice", "bob", "POST", "likes", {"post": "{B1}", "user": "{alice}"}, 400),
    ("like-user+", "bob", "POST", "likes", {"post": "{A1}", "user": "{bob}", "user+": "{alice}"}, 400),
    ("like-guest", "guest", "POST", "likes", {"post": "{A1}", "user": "{alice}"}, 400),
    ("LA-delete", "bob", "DELETE", "likes/{LA}", None, 404),
    ("LB-user", "bob", "PATCH", "likes/{LB}", {"user": "{alice}"}, 403),
    ("vault-create", "bob", "POST", "vault", {"post": "{A1}", "code": "x"}, 403),
    ("vault-update", "bob", "PATCH", "vault/{VA}", {"code": "x"}, 403),
    ("vault-delete", "guest", "DELETE", "vault/{VA}", None, 403),
    ("view-create", "bob", "POST", "post_view", {"title": "x", "owner": "{bob}"}, 400),
    ("view-update", "bob", "PATCH", "post_view/{B1}", {"title": "x"}, 400),
    ("view-delete", "bob", "DELETE", "post_view/{A1}", None, 400),
    ("alice-name", "bob", "PATCH", "users/{alice}", {"name": "pwned"}, 404),
    ("alice-email", "bob", "PATCH", "users/{alice}", {"email": "bob2@example.com"}, 404),
    ("alice-password", "bob", "PATCH", "users/{alice}", NEW_PASSWORD, 404),
    ("alice-verified", "bob", "PATCH", "users/{alice}", {"verified": True}, 404),
    ("alice-visibility", "bob", "PATCH", "users/{alice}", {"emailVisibility": True}, 404),
    ("alice-tokenKey", "guest", "PATCH", "users/{alice}", {"tokenKey": "x" * 50}, 404),
    ("alice-delete", "bob", "DELETE", "users/{alice}", None, 404),
    ("bob-verified", "bob", "PATCH", "users/{bob}", {"verified": True}, 400),
    ("bob-verified-str", "bob", "PATCH", "users/{bob}", {"verified": "true"}, 400),
    ("bob-email", "bob", "PATCH", "users/{bob}", {"email": "bob2@example.com"}, 400),
    ("bob-email-alice", "bob", "PATCH", "users/{bob}", {"email": "ALICE@example.com"}, 400),
    # A wrong or missing oldPassword counts towards the record's lockout: 429 after five.
    ("bob-password", "bob", "PATCH", "users/{bob}", NEW_PASSWORD, (400, 429)),
    ("bob-password-old", "bob", "PATCH", "users/{bob}", {**NEW_PASSWORD, "oldPassword": "wrong-password-1"},
     (400, 429)),
    ("user-verified", "guest", "POST", "users", {"email": "eve@example.com", **NEW_PASSWORD, "verified": True}, 400),
    ("user-alice-id", "guest", "POST", "users", {"id": "{alice}", "email": "eve@example.com", **NEW_PASSWORD}, 400),
    ("user-alice-email", "guest", "POST", "users", {"email": "ALICE@Example.com", **NEW_PASSWORD}, 400),
    ("user-no-confirm", "guest", "POST", "users", {"email": "eve@example.com", "password": "pwned-password-1"}, 400),
    ("member-alice-id", "guest", "POST", "members", {"id": "{alice}", "email": "eve@example.com", **NEW_PASSWORD}, 400),
    ("member-verified", "guest", "POST", "members",
     {"email": "eve@example.com", **NEW_PASSWORD, "verified": True}, 400),
    ("superuser", "bob", "POST", "_superusers", {"email": "eve@example.com", **NEW_PASSWORD}, 403),
    ("superuser-guest", "guest", "POST", "_superusers", {"email": "eve@example.com", **NEW_PASSWORD}, 403),
    ("apikey-record", "bob", "POST", "_apiKeys", {"name": "x"}, 403),
]
# The attempts that also go as multipart and urlencoded forms (and multipart @jsonPayload).
FORM_WRITES = {"post-for-alice", "post-owner+", "post-score+", "A1-title", "A1-members+", "B1-owner+",
               "B1-score+", "B1-members+", "B1-members-", "comment-on-A1", "comment-as-alice", "CB-post+",
               "alice-email", "bob-verified", "bob-email", "bob-password", "user-verified", "user-alice-id",
               "member-alice-id", "superuser"}


def multipart(fields: list[tuple[str, str]]) -> tuple[bytes, dict[str, str]]:
    boundary = "----attack" + secrets.token_hex(8)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields]
    return (("".join(parts) + f"--{boundary}--\r\n").encode(),
            {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def form_fields(body: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for key, value in body.items():
        for item in value if isinstance(value, list) else [value]:
            out.append((key, "true" if item is True else "false" if item is False else str(item)))
    return out


async def send_write(w: World, actor: Actor, method: str, url: str, body: Any, encoding: str) -> httpx.Response:
    url = f"/api/collections/{w.fill(url.split('/')[0])}/records" + (
        f"/{w.fill(url.split('/', 1)[1])}" if "/" in url else "")
    body = w.fill_any(body)
    if body is None:
        return await w.call(method, url, actor)
    if encoding == "json":
        return await w.call(method, url, actor, json=body)
    if encoding == "urlencoded":
        from urllib.parse import urlencode

        return await w.call(method, url, actor, content=urlencode(form_fields(body)).encode(),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    if encoding == "jsonPayload":
        import orjson

        content, headers = multipart([("@jsonPayload", orjson.dumps(body).decode())])
    else:
        content, headers = multipart(form_fields(body))
    return await w.call(method, url, actor, content=content, headers=headers)


def write_cases() -> list[Any]:
    cases = []
    for name, actor, method, url, body, status in WRITES:
        for encoding in ("json", "multipart", "urlencoded", "jsonPayload"):
            if encoding == "json" or name in FORM_WRITES:
                cases.append(((actor, method, url, body, status, encoding), f"{name}-{encoding}"))
    return table([c for c, _ in cases], [i for _, i in cases])


@pytest.mark.parametrize("actor,method,url,body,status,encoding", write_cases())
async def test_write_attacks_are_refused(w, actor, method, url, body, status, encoding):
    actor = who(w, actor)
    res = await send_write(w, actor, method, url, body, encoding)
    await assert_no_leak(w, res, actor)
    assert_error(res, status)
    await w.assert_intact()


# --------------------------------------------------------------------------- batch
BATCH_WRITES = [c for c in WRITES if c[3].split("/")[0] not in ("_apiKeys",)]


async def batch(w: World, actor: Actor, requests: list[dict[str, Any]]) -> httpx.Response:
    res = await w.call("POST", "/api/batch", actor, json={"requests": w.fill_any(requests)})
    await assert_no_leak(w, res, actor)
    return res


def batch_failure(res: httpx.Response, index: int) -> dict[str, Any]:
    body = assert_error(res, 400)
    assert body["message"] == "Batch transaction failed.", body
    return body["data"]["requests"][str(index)]["response"]


def sub_request(method: str, url: str, body: Any) -> dict[str, Any]:
    path = f"/api/collections/{url.split('/')[0]}/records" + (f"/{url.split('/', 1)[1]}" if "/" in url else "")
    out: dict[str, Any] = {"method": method, "url": path}
    if body is not None:
        out["body"] = body
    return out


@pytest.mark.parametrize("actor,method,url,body,status",
                         table([c[1:] for c in BATCH_WRITES], [c[0] for c in BATCH_WRITES]))
async def test_batch_write_attacks_are_refused(w, actor, method, url, body, status):
    actor = who(w, actor)
    # Each attack after a write Bob may make: the failure must undo that one too.
    legit = {"method": "POST", "url": "/api/collections/posts/records", "body": {"owner": "{bob}", "title": "fine"}}
    requests = [legit, sub_request(method, url, body)] if actor is w.bob else [sub_request(method, url, body)]
    res = await batch(w, actor, requests)
    assert batch_failure(res, len(requests) - 1)["status"] in (
        status if isinstance(status, tuple) else (status,)), res.text
    await w.assert_intact()


BATCH_TRICKS = [
    ("upsert-A1", [{"method": "PUT", "url": "/api/collections/posts/records",
                    "body": {"id": "{A1}", "owner": "{bob}", "title": "pwned"}}], 404),
    ("upsert-A1-owner+", [{"method": "PUT", "url": "/api/collections/posts/records",
                           "body": {"id": "{A1}", "owner+": "{bob}"}}], 404),
    ("upsert-B1-owner+", [{"method": "PUT", "url": "/api/collections/posts/records",
                           "body": {"id": "{B1}", "owner+": "{alice}"}}], 404),
    ("upsert-B1-score+", [{"method": "PUT", "url": "/api/collections/posts/records",
                           "body": {"id": "{B1}", "score+": 500}}], 404),
    ("upsert-alice-user", [{"method": "PUT", "url": "/api/collections/users/records",
                            "body": {"id": "{alice}", "verified": True, "name": "pwned"}}], 404),
    ("upsert-bob-verified", [{"method": "PUT", "url": "/api/collections/users/records",
                              "body": {"id": "{bob}", "verified": True}}], 400),
    ("upsert-superuser", [{"method": "PUT", "url": "/api/collections/_superusers/records",
                           "body": {"email": "eve@example.com", "password": "pwned-password-1",
                                    "passwordConfirm": "pwned-password-1"}}], 403),
    ("upsert-vault", [{"method": "PUT", "url": "/api/collections/vault/records",
                       "body": {"id": "{VA}", "code": "x"}}], 403),
    ("escaped-superusers", [{"method": "POST", "url": "/api/collections/%5Fsuperusers/records",
                             "body": {"email": "eve@example.com", "password": "pwned-password-1",
                                      "passwordConfirm": "pwned-password-1"}}], 403),
    ("superuser-header", [{"method": "PATCH", "url": "/api/collections/posts/records/{A1}",
                           "headers": {"Authorization": "SU", "authorization": "SU"},
                           "body": {"title": "pwned"}}], 404),
    ("dot-dot-path", [{"method": "POST", "url": "/api/collections/posts/records/../../_superusers/records",
                       "body": {"email": "eve@example.com"}}], 400),
    ("collections-api", [{"method": "DELETE", "url": "/api/collections/posts"}], 400),
    ("settings-api", [{"method": "PATCH", "url": "/api/settings", "body": {"batch": {"maxRequests": 10000}}}], 400),
    ("lower-case-method", [{"method": "patch", "url": "/api/collections/posts/records/{A1}",
                            "body": {"title": "pwned"}}], 404),
    ("query-expand-fields", [{"method": "PATCH", "url": "/api/collections/posts/records/{A1}"
                              "?expand=vault_via_post&fields=*,secret", "body": {}}], 404),
]


@pytest.mark.parametrize("requests,status", table([c[1:] for c in BATCH_TRICKS], [c[0] for c in BATCH_TRICKS]))
async def test_batch_tricks_are_refused(w, requests, status):
    # Sub-request headers carrying the superuser's token must not make Bob a superuser.
    requests = [{**item, "headers": {k: w.su["Authorization"] for k in item["headers"]}} if "headers" in item
                else item for item in requests]
    res = await batch(w, w.bob, requests)
    assert batch_failure(res, 0)["status"] == status, res.text
    await w.assert_intact()


async def test_batch_reads_back_nothing_hidden(w):
    # A write Bob may make, asking the answer for hidden fields and locked expands.
    res = await batch(w, w.bob, [
        {"method": "PATCH", "url": "/api/collections/posts/records/{B1}?expand=vault_via_post,members,"
                                   "members.posts_via_owner&fields=*,secret,expand.*,expand.vault_via_post",
         "body": {"title": "bob-notes"}},
        {"method": "PATCH", "url": "/api/collections/comments/records/{CB}?expand=post,post.vault_via_post",
         "body": {"body": "bob-self"}},
        {"method": "PATCH", "url": "/api/collections/comments/records/{CB}?expand=post",
         "body": {"body": "bob-self"}}])
    assert res.status_code == 200, res.text
    first, second, third = (r["body"] for r in res.json())
    assert "secret" not in first and set(first.get("expand", {})) == {"members"}
    assert [m["id"] for m in first["expand"]["members"]] == [w.bob.id, w.alice.id]
    assert "email" not in first["expand"]["members"][1]
    # post.vault_via_post goes through the locked vault: as in PocketBase the path adds
    # nothing, and it replaces the shorter "post" it extends.
    assert "expand" not in second
    assert set(third["expand"]) == {"post"} and "secret" not in third["expand"]["post"]
    # Too many requests in one batch are refused before any runs.
    many = [{"method": "POST", "url": "/api/collections/posts/records", "body": {"owner": "{bob}"}}] * 51
    assert_error(await batch(w, w.bob, many), 400)
    await w.assert_intact()


async def test_token_keys_cannot_be_chosen(w):
    """A tokenKey sent on create or update is ignored: the stored key, and so the tokens it
    signs, stay the server's."""
    chosen = "k" * 50
    res = await w.call("PATCH", f"/api/collections/users/records/{w.bob.id}", w.bob, json={"tokenKey": chosen})
    assert res.status_code == 200 and "tokenKey" not in res.json(), res.text
    made = await w.call("POST", "/api/collections/users/records", w.guest, json={
        "email": "eve@example.com", **NEW_PASSWORD, "tokenKey": chosen, "emailVisibility": True})
    assert made.status_code == 200 and "tokenKey" not in made.json(), made.text
    rows = await w.rows()
    assert rows["users"][w.bob.id]["tokenKey"] == w.baseline["users"][w.bob.id]["tokenKey"]
    assert rows["users"][made.json()["id"]]["tokenKey"] != chosen
    assert (await w.call("POST", "/api/collections/users/auth-refresh", w.bob)).status_code == 200
    assert (await w.call("DELETE", f"/api/collections/users/records/{made.json()['id']}", w.su)).status_code == 204
    await w.assert_intact()


def test_every_hole_names_an_attempt():
    assert set(HOLES) <= USED, set(HOLES) - USED
