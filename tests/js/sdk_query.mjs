// Real-client query test: drives a running Bastion server with the official `pocketbase`
// JS SDK (list filters/sort/expand/fields, getFullList, getFirstListItem, pb.filter
// parameter binding, rules for guests and users, batch, cursor pagination, aggregates).
//
// Usage:
//   node sdk_query.mjs <baseURL> <superuserEmail> <superuserPassword>
// or set BASTION_URL, BASTION_SUPERUSER_EMAIL, BASTION_SUPERUSER_PASSWORD.
//
// Every expectation is computed client-side from the seeded rows (kept in `model`), so the
// script is deterministic on every backend. It cleans up after itself and tolerates the
// leftovers of an interrupted earlier run.
//
// On success the last stdout line is {"ok":true,"checks":N}. On the first failed check it
// prints `FAIL [step] ...` (plus the server response for SDK errors) to stderr and exits 1.

import assert from 'node:assert/strict';
import PocketBase, { ClientResponseError } from 'pocketbase';
import { checkCount, expectError, ignore404, run, t } from './harness.mjs';

const [baseURL, email, password] = [
    process.argv[2] || process.env.BASTION_URL,
    process.argv[3] || process.env.BASTION_SUPERUSER_EMAIL,
    process.argv[4] || process.env.BASTION_SUPERUSER_PASSWORD,
];
if (!baseURL || !email || !password) {
    console.error('usage: node sdk_query.mjs <baseURL> <superuserEmail> <superuserPassword>');
    process.exit(2);
}

const AUTHORS = 'q_authors';
const POSTS = 'q_posts';
const USER_EMAIL = `sdk-query-${Date.now().toString(36)}@example.com`;
const USER_PASSWORD = 'sdk-query-password-1';
const QUOTED = `it's "quoted"`;
const TAGS = ['js', 'py', 'go', 'db'];
const RECORD_ID = /^[a-z0-9]{15}$/;

let step = 'init';


// ---------------------------------------------------------------- client-side model

/** Byte-order string compare (the server sorts text in binary collation on every backend). */
const cmpStr = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** Sorts rows like `sort=-views,title` (`spec` = ['-views', 'title']), ties broken by id. */
function sortRows(rows, spec) {
    return [...rows].sort((a, b) => {
        for (const key of spec) {
            const desc = key.startsWith('-');
            const name = desc ? key.slice(1) : key;
            const x = a[name];
            const y = b[name];
            const c = typeof x === 'number' ? x - y : cmpStr(String(x), String(y));
            if (c !== 0) return desc ? -c : c;
        }
        return cmpStr(a.id, b.id);
    });
}

const byTitle = (rows) => sortRows(rows, ['title', 'views']); // = sort 'title,views'
const ids = (rows) => rows.map((r) => r.id);

/** `ids(rows)`, asserting the expectation is not vacuous (at least one row selected). */
function someIds(rows, what) {
    t.ok(rows.length > 0, `expected rows for ${what} are not empty`);
    return ids(rows);
}
const pbDate = (s) => new Date(s.replace(' ', 'T')); // "2024-05-06 07:08:09.123Z" -> Date

async function main() {
    const pb = new PocketBase(baseURL);
    pb.autoCancellation(false);
    const guest = new PocketBase(baseURL);
    guest.autoCancellation(false);

    step = 'superuser authWithPassword';
    await pb.collection('_superusers').authWithPassword(email, password);
    t.equal(pb.authStore.isSuperuser, true);

    step = 'cleanup from a previous run';
    await ignore404(pb.collections.delete(POSTS));
    await ignore404(pb.collections.delete(AUTHORS));

    // ------------------------------------------------------------- collections
    step = 'collections.create q_authors / q_posts';
    const authorsColl = await pb.collections.create({
        name: AUTHORS,
        type: 'base',
        listRule: 'secret = false',
        viewRule: 'secret = false',
        fields: [
            { name: 'name', type: 'text', required: true },
            { name: 'secret', type: 'bool' },
        ],
    });
    t.equal(authorsColl.listRule, 'secret = false');
    const readRule = "published = true || @request.auth.collectionName = '_superusers'";
    const postsColl = await pb.collections.create({
        name: POSTS,
        type: 'base',
        listRule: readRule,
        viewRule: readRule,
        fields: [
            { name: 'title', type: 'text', required: true },
            { name: 'views', type: 'number', min: 0 },
            { name: 'published', type: 'bool' },
            { name: 'tags', type: 'select', maxSelect: 4, values: TAGS },
            { name: 'author', type: 'relation', collectionId: authorsColl.id, maxSelect: 1 },
            { name: 'created', type: 'autodate', onCreate: true, onUpdate: false },
        ],
    });
    t.equal(postsColl.listRule, readRule);
    t.equal(postsColl.createRule, null, 'create stays superuser-only');

    // -------------------------------------------------------------------- seed
    step = 'seed authors';
    const authors = pb.collection(AUTHORS);
    const alice = await authors.create({ name: 'Alice', secret: false });
    const bob = await authors.create({ name: 'Bob', secret: false });
    const carol = await authors.create({ name: 'Carol', secret: true });
    const authorById = { [alice.id]: alice, [bob.id]: bob, [carol.id]: carol };

    step = 'seed posts';
    const posts = pb.collection(POSTS);
    const TAG_SETS = [['js'], ['py', 'db'], ['go'], [], ['js', 'go']];
    const AUTHOR_CYCLE = [alice.id, bob.id, carol.id, '', alice.id];
    const seeds = [];
    for (let i = 0; i < 23; i++) {
        seeds.push({
            title: `Post ${String(i).padStart(2, '0')}`,
            views: (i * 7) % 11, // 0..10 with ties
            published: i % 3 !== 0,
            tags: TAG_SETS[i % 5],
            author: AUTHOR_CYCLE[i % 5],
        });
    }
    // Two rows with the same tricky title for the pb.filter() binding checks.
    seeds.push({ title: QUOTED, views: 5, published: true, tags: ['db'], author: bob.id });
    seeds.push({ title: QUOTED, views: 2, published: true, tags: [], author: '' });
    const model = new Map(); // id -> row as the server returns it
    let pivot; // `created` of seeds[12]; every earlier seed is strictly older (see the pause)
    for (const [i, s] of seeds.entries()) {
        if (i === 12) await new Promise((r) => setTimeout(r, 5));
        const rec = await posts.create(s);
        if (i === 12) pivot = rec.created;
        t.match(rec.id, RECORD_ID);
        t.equal(rec.title, s.title);
        t.equal(rec.views, s.views);
        t.deepEqual(rec.tags, s.tags);
        t.equal(rec.author, s.author);
        model.set(rec.id, rec);
    }
    t.equal(model.size, 25);
    const rows = () => [...model.values()];
    const where = (pred) => rows().filter(pred);
    const authorName = (r) => authorById[r.author]?.name ?? '';

    // ------------------------------------------------------------- getList
    step = 'getList: && / || filters, -views,title sort, totals';
    {
        const filter = 'published = true && views > 5';
        const want = sortRows(where((r) => r.published && r.views > 5), ['-views', 'title']);
        const page = await posts.getList(1, 50, { filter, sort: '-views,title' });
        t.equal(page.page, 1);
        t.equal(page.perPage, 50);
        t.equal(page.totalItems, want.length);
        t.equal(page.totalPages, 1);
        t.deepEqual(ids(page.items), ids(want));

        const filter2 = '(views < 2 || views > 8) && published = false';
        const want2 = byTitle(where((r) => (r.views < 2 || r.views > 8) && !r.published));
        const page2 = await posts.getList(1, 50, { filter: filter2, sort: 'title,views' });
        t.ok(want2.length > 0, 'filter2 selects something');
        t.deepEqual(ids(page2.items), ids(want2));
        t.equal(page2.totalItems, want2.length);
    }

    step = 'getList: paging through -views,title';
    {
        const all = sortRows(rows(), ['-views', 'title']);
        // Ties on (views, title) are possible only for distinct titles, so the order is total.
        for (const [pageNo, perPage] of [[1, 7], [2, 7], [4, 7], [5, 7]]) {
            const page = await posts.getList(pageNo, perPage, { sort: '-views,title' });
            t.equal(page.page, pageNo);
            t.equal(page.perPage, perPage);
            t.equal(page.totalItems, 25);
            t.equal(page.totalPages, 4);
            t.deepEqual(ids(page.items), ids(all.slice((pageNo - 1) * perPage, pageNo * perPage)),
                `page ${pageNo}/${perPage}`);
        }
        const skipped = await posts.getList(2, 10, { sort: '-views,title', skipTotal: true });
        t.equal(skipped.totalItems, -1);
        t.equal(skipped.totalPages, -1);
        t.deepEqual(ids(skipped.items), ids(all.slice(10, 20)));
    }

    step = 'getList: ~ (contains, case-insensitive) and !~';
    {
        const want = byTitle(where((r) => r.title.toLowerCase().includes('post 1')));
        t.equal(want.length, 10); // Post 10..19
        const page = await posts.getList(1, 50, { filter: "title ~ 'Post 1'", sort: 'title,views' });
        t.deepEqual(ids(page.items), ids(want));
        const lower = await posts.getList(1, 50, { filter: 'title ~ "post 1"', sort: 'title,views' });
        t.deepEqual(ids(lower.items), ids(want), '~ is case-insensitive');
        const wild = await posts.getList(1, 50, { filter: "title ~ 'Post %5'", sort: 'title,views' });
        t.deepEqual(ids(wild.items), ids(byTitle(where((r) => /^Post .*5$/.test(r.title)))),
            'explicit % wildcard');
        const not = await posts.getList(1, 50, { filter: "title !~ 'post'", sort: 'views' });
        t.deepEqual(ids(not.items), ids(sortRows(where((r) => r.title === QUOTED), ['views'])));
    }

    step = 'getList: ?= / = / :length on the tags multi-select';
    {
        const anyPy = await posts.getList(1, 50, { filter: "tags:each ?= 'py'", sort: 'title,views' });
        t.deepEqual(ids(anyPy.items), someIds(byTitle(where((r) => r.tags.includes('py'))), '?= py'));
        const anyJsOrGo = await posts.getList(1, 50, {
            filter: "tags:each ?= 'js' || tags:each ?= 'go'", sort: 'title,views',
        });
        t.deepEqual(ids(anyJsOrGo.items),
            ids(byTitle(where((r) => r.tags.includes('js') || r.tags.includes('go')))));
        // The plain operator requires every item to match (and at least one item).
        const allJs = await posts.getList(1, 50, { filter: "tags:each = 'js'", sort: 'title,views' });
        t.deepEqual(ids(allJs.items),
            someIds(byTitle(where((r) => r.tags.length > 0 && r.tags.every((x) => x === 'js'))), '= js'));
        const two = await posts.getList(1, 50, { filter: 'tags:length = 2', sort: 'title,views' });
        t.deepEqual(ids(two.items), someIds(byTitle(where((r) => r.tags.length === 2)), ':length'));
        const none = await posts.getList(1, 50, { filter: "tags:each ?= 'nope'" });
        t.equal(none.totalItems, 0);
        t.deepEqual(none.items, []);
    }

    step = 'getList: relation path author.name';
    {
        for (const name of ['Alice', 'Carol']) {
            const page = await posts.getList(1, 50, {
                filter: `author.name = '${name}' && views >= 3`, sort: '-views,title',
            });
            t.deepEqual(ids(page.items),
                someIds(sortRows(where((r) => authorName(r) === name && r.views >= 3), ['-views', 'title']),
                    name),
                `author.name = ${name}`);
        }
        const noAuthor = await posts.getList(1, 50, { filter: "author = ''", sort: 'title,views' });
        t.deepEqual(ids(noAuthor.items), someIds(byTitle(where((r) => r.author === '')), 'no author'));
    }

    step = 'getList: expand author';
    {
        const page = await posts.getList(1, 50, { sort: 'title,views', expand: 'author' });
        t.equal(page.items.length, 25);
        for (const item of page.items) {
            const row = model.get(item.id);
            if (row.author) {
                t.equal(typeof item.expand, 'object', `expand on ${item.title}`);
                t.equal(item.expand.author.id, row.author, 'expand.author is an object');
                t.equal(item.expand.author.name, authorName(row));
                t.equal(item.expand.author.collectionName, AUTHORS);
                t.equal(item.author, row.author, 'relation id kept next to expand');
            } else {
                // PocketBase emits `expand` for every record of a resolved path, {} if empty.
                t.deepEqual(item.expand, {}, `expand {} on ${item.title} (no author)`);
            }
        }
        const one = await posts.getOne(ids(where((r) => r.author === carol.id))[0], { expand: 'author' });
        t.equal(one.expand.author.name, 'Carol', 'superuser expands a secret author');
    }

    step = 'getList: fields id,title,expand.author.name';
    {
        const PICK = 'id,title,expand.author.name';
        const want = byTitle(where((r) => r.author !== ''));
        const page = await posts.getList(1, 50, {
            filter: "author != ''", sort: 'title,views', expand: 'author', fields: PICK,
        });
        t.ok(want.length > 0 && want.length < 25);
        t.deepEqual(Object.keys(page).sort(), ['items', 'page', 'perPage', 'totalItems', 'totalPages'],
            'fields picks inside items and keeps the envelope');
        t.equal(page.totalItems, want.length);
        t.deepEqual(page.items, want.map((r) => ({
            id: r.id, title: r.title, expand: { author: { name: authorName(r) } },
        })));
        const bare = await posts.getList(1, 50, {
            filter: "author = ''", sort: 'title,views', expand: 'author', fields: PICK,
        });
        t.deepEqual(bare.items, byTitle(where((r) => r.author === ''))
            .map((r) => ({ id: r.id, title: r.title, expand: {} })), 'empty expand kept by fields');
        const noExpand = await posts.getList(1, 3, { sort: 'title,views', fields: PICK });
        t.deepEqual(noExpand.items.map((r) => Object.keys(r).sort()), Array(3).fill(['id', 'title']),
            'no expand key without ?expand');
        const star = await posts.getOne(where((r) => r.author === alice.id)[0].id, {
            expand: 'author', fields: '*,expand.author.name',
        });
        t.deepEqual(Object.keys(star).sort(), [
            'author', 'collectionId', 'collectionName', 'created', 'expand', 'id', 'published', 'tags',
            'title', 'views',
        ]);
        t.deepEqual(star.expand, { author: { name: 'Alice' } });
    }

    step = 'getList: invalid filter / sort -> 400';
    await expectError(posts.getList(1, 10, { filter: 'views >' }), 400);
    await expectError(posts.getList(1, 10, { filter: 'nosuchfield = 1' }), 400);
    await expectError(posts.getList(1, 10, { sort: 'nosuchfield' }), 400);

    // ---------------------------------------------------------- getFullList
    step = 'getFullList batch 10';
    {
        const full = await posts.getFullList({ sort: '-views,title', batch: 10 });
        t.deepEqual(ids(full), ids(sortRows(rows(), ['-views', 'title'])));
        const filter = 'published = true';
        const pub = await posts.getFullList({ filter, sort: 'views,title', batch: 10 });
        t.deepEqual(ids(pub), ids(sortRows(where((r) => r.published), ['views', 'title'])));
        // Exactly two full pages: the SDK asks for a third one and gets an empty page.
        const twenty = byTitle(rows()).slice(0, 20);
        const cut = twenty[19].title;
        const exact = await posts.getFullList({
            filter: pb.filter('title <= {:cut}', { cut }), sort: 'title,views', batch: 10,
        });
        t.deepEqual(ids(exact), ids(twenty));
    }

    // ----------------------------------------------------- getFirstListItem
    step = 'getFirstListItem';
    {
        const want = where((r) => r.title === 'Post 07')[0];
        const found = await posts.getFirstListItem('title = "Post 07"');
        t.equal(found.id, want.id);
        t.equal(found.views, want.views);
        const withExpand = await posts.getFirstListItem(`id = '${want.id}'`, { expand: 'author' });
        t.equal(withExpand.expand?.author?.name, authorName(want));
        const err = await expectError(posts.getFirstListItem('title = "No such post"'), 404);
        t.equal(err.response.message, "The requested resource wasn't found.");
        await expectError(posts.getFirstListItem('title = '), 400); // server-side parse error
    }

    // ------------------------------------------------------------ pb.filter
    step = 'pb.filter quoting';
    {
        const expr = pb.filter('title = {:t} && views > {:v}', { t: QUOTED, v: 3 });
        t.equal(expr, `title = "it's \\"quoted\\"" && views > 3`);
        const match = await posts.getList(1, 10, { filter: expr });
        const want = where((r) => r.title === QUOTED && r.views > 3);
        t.equal(want.length, 1);
        t.deepEqual(ids(match.items), ids(want));
        const both = await posts.getList(1, 10, {
            filter: pb.filter('title = {:t}', { t: QUOTED }), sort: 'views',
        });
        t.deepEqual(both.items.map((r) => r.views), [2, 5]);
        const single = await posts.getList(1, 10, {
            filter: pb.filter("title = {:t} || title = 'Post 00'", { t: "it's" }),
        });
        t.deepEqual(ids(single.items), ids(where((r) => r.title === 'Post 00')));
        const found = await posts.getFirstListItem(pb.filter('title ~ {:t} && published = {:p}', {
            t: '"quoted"', p: true,
        }));
        t.equal(found.title, QUOTED);
    }

    step = 'pb.filter Date parameter vs created';
    {
        const since = pbDate(pivot);
        t.equal(since.toISOString().replace('T', ' '), pivot, 'created round-trips through Date');
        const expr = pb.filter('created >= {:d}', { d: since });
        t.equal(expr, `created >= "${pivot}"`);
        const after = await posts.getFullList({ filter: expr, sort: 'created' });
        t.deepEqual(ids(after).sort(), ids(where((r) => r.created >= pivot)).sort());
        const before = await posts.getList(1, 50, { filter: pb.filter('created < {:d}', { d: since }) });
        t.equal(before.totalItems, where((r) => r.created < pivot).length);
        t.equal(before.totalItems, 12, 'seeds 0..11 are older than the pivot');
        t.equal(after.length, 13);
        const future = await posts.getList(1, 1, {
            filter: pb.filter('created > {:d}', { d: new Date(Date.now() + 3600e3) }),
        });
        t.equal(future.totalItems, 0);
        const past = await posts.getList(1, 1, {
            filter: pb.filter('created > {:d}', { d: new Date('2000-01-01T00:00:00Z') }),
        });
        t.equal(past.totalItems, 25);
        // The same filter written by hand and sent through pb.send().
        const raw = await pb.send(`/api/collections/${POSTS}/records`, {
            query: { filter: `created >= '${pivot}'`, perPage: 1 },
        });
        t.equal(raw.totalItems, after.length);
    }

    // ----------------------------------------------------- guest and user
    const published = byTitle(where((r) => r.published));
    t.ok(published.length > 0 && published.length < 25);

    step = 'guest sees only published posts';
    {
        const gposts = guest.collection(POSTS);
        const page = await gposts.getList(1, 50, { sort: 'title,views' });
        t.equal(page.totalItems, published.length);
        t.deepEqual(ids(page.items), ids(published));
        const full = await gposts.getFullList({ sort: 'title,views', batch: 7 });
        t.deepEqual(ids(full), ids(published));
        const hidden = where((r) => !r.published)[0];
        await expectError(gposts.getOne(hidden.id), 404);
        const visible = published[0];
        t.equal((await gposts.getOne(visible.id)).id, visible.id);
        // The client filter narrows what the rule allows; it can't widen it.
        const unpub = await gposts.getList(1, 50, { filter: 'published = false' });
        t.equal(unpub.totalItems, 0);
        const orAll = await gposts.getList(1, 50, { filter: 'published = false || views >= 0' });
        t.equal(orAll.totalItems, published.length);
        // Crossing a relation needs list access to q_authors (secret = false is ANDed in).
        const viaAlice = await gposts.getList(1, 50, {
            filter: "author.name = 'Alice'", sort: 'title,views',
        });
        t.deepEqual(ids(viaAlice.items),
            someIds(published.filter((r) => authorName(r) === 'Alice'), 'guest Alice'));
        const viaCarol = await gposts.getList(1, 50, { filter: "author.name = 'Carol'" });
        t.equal(viaCarol.totalItems, 0, 'secret author is not listable by guests');
        const viaSecret = await gposts.getList(1, 50, { filter: 'author.secret = true' });
        t.equal(viaSecret.totalItems, 0, 'the joined listRule is ANDed into the filter');
        const suSecret = await posts.getList(1, 50, { filter: 'author.secret = true' });
        t.equal(suSecret.totalItems, where((r) => r.author === carol.id).length, 'superuser sees through');
        // expand: each related record must pass q_authors.viewRule.
        const expanded = await gposts.getList(1, 50, { sort: 'title,views', expand: 'author' });
        for (const item of expanded.items) {
            const row = model.get(item.id);
            if (row.author && row.author !== carol.id) {
                t.equal(item.expand?.author?.name, authorName(row), `guest expand.author on ${item.title}`);
            } else {
                t.deepEqual(item.expand, {}, `guest: no (or secret) author -> expand {} on ${item.title}`);
            }
        }
        await expectError(guest.collection(AUTHORS).getOne(carol.id), 404);
        t.equal((await guest.collection(AUTHORS).getList(1, 10)).totalItems, 2);
        // @request.* in a client filter is for superusers only.
        await expectError(gposts.getList(1, 10, { filter: "@request.auth.id != ''" }), 403);
        await expectError(gposts.getFirstListItem(`title = "Post 00"`), 404); // Post 00 is unpublished
    }

    step = 'users record via the SDK + authWithPassword';
    const user = await guest.collection('users').create({
        email: USER_EMAIL,
        password: USER_PASSWORD,
        passwordConfirm: USER_PASSWORD,
    });
    t.match(user.id, RECORD_ID);
    const userPb = new PocketBase(baseURL);
    userPb.autoCancellation(false);
    const userAuth = await userPb.collection('users').authWithPassword(USER_EMAIL, USER_PASSWORD);
    t.equal(userAuth.record.id, user.id);
    t.equal(userPb.authStore.isValid, true);
    t.equal(userPb.authStore.isSuperuser, false);

    step = 'user sees the same as the guest';
    {
        const uposts = userPb.collection(POSTS);
        const page = await uposts.getList(1, 50, { sort: 'title,views' });
        t.equal(page.totalItems, published.length);
        t.deepEqual(ids(page.items), ids(published));
        const full = await uposts.getFullList({ filter: "tags:each ?= 'js'", sort: '-views,title', batch: 3 });
        const wantJs = sortRows(published.filter((r) => r.tags.includes('js')), ['-views', 'title']);
        t.deepEqual(ids(full), someIds(wantJs, 'user js'));
        await expectError(uposts.getOne(where((r) => !r.published)[0].id), 404);
    }

    // -------------------------------------------------------------- cursor
    step = 'cursor pagination (superuser)';
    {
        const want = sortRows(rows(), ['views']); // ties broken by id
        const first = await posts.getList(1, 5, { sort: 'views', cursor: '' });
        t.ok('nextCursor' in first, `nextCursor in ${JSON.stringify(Object.keys(first))}`);
        t.equal(typeof first.nextCursor, 'string');
        t.deepEqual(ids(first.items), ids(want.slice(0, 5)));
        // The raw response carries the same token.
        const raw = await pb.send(`/api/collections/${POSTS}/records`, {
            query: { sort: 'views', perPage: 5, cursor: '' },
        });
        t.equal(raw.nextCursor, first.nextCursor);
        t.deepEqual(ids(raw.items), ids(first.items));

        const seen = [...ids(first.items)];
        let next = first.nextCursor;
        let pages = 1;
        while (next) {
            const page = await posts.getList(1, 5, { sort: 'views', cursor: next });
            t.ok(page.items.length > 0 && page.items.length <= 5, `page ${pages + 1} size`);
            seen.push(...ids(page.items));
            next = page.nextCursor;
            pages++;
            t.ok(pages <= 6, 'cursor walk terminates');
        }
        t.equal(next, null, 'last page has nextCursor null');
        t.equal(pages, 5);
        t.deepEqual(seen, ids(want), 'cursor walk visits every row once, in order');
        await expectError(posts.getList(1, 5, { sort: 'views', cursor: 'not-a-cursor' }), 400);
        await expectError(posts.getList(1, 5, { sort: '-views', cursor: first.nextCursor }), 400);
    }

    step = 'cursor pagination (guest, -views filter)';
    {
        const want = sortRows(published.filter((r) => r.views >= 2), ['-views']);
        const seen = [];
        let next = '';
        let pages = 0;
        do {
            const page = await guest.collection(POSTS).getList(1, 4, {
                sort: '-views', filter: 'views >= 2', cursor: next,
            });
            seen.push(...ids(page.items));
            next = page.nextCursor;
            pages++;
        } while (next && pages < 20);
        t.deepEqual(seen, someIds(want, 'guest cursor'));
        t.equal(pages, Math.max(1, Math.ceil(want.length / 4)));
    }

    // ---------------------------------------------------------- aggregates
    step = 'aggregate groupBy published sum views';
    const sumViews = (list) => list.reduce((s, r) => s + r.views, 0);
    const expectAggregate = (list) => [false, true]
        .map((p) => list.filter((r) => r.published === p))
        .filter((g) => g.length > 0)
        .map((g) => ({ group: { published: g[0].published }, count: g.length, sum: { views: sumViews(g) } }));
    {
        const agg = await pb.send(`/api/collections/${POSTS}/aggregate`, {
            query: { groupBy: 'published', sum: 'views' },
        });
        t.equal(agg.totalGroups, 2);
        t.deepEqual(agg.items, expectAggregate(rows()));
        const gagg = await guest.send(`/api/collections/${POSTS}/aggregate`, {
            query: { groupBy: 'published', sum: 'views' },
        });
        t.equal(gagg.totalGroups, 1, 'guest aggregate follows listRule');
        t.deepEqual(gagg.items, expectAggregate(published));
        const filtered = await pb.send(`/api/collections/${POSTS}/aggregate`, {
            query: { groupBy: 'author.name', sum: 'views', filter: 'views > 4', sort: '-count' },
        });
        const byName = {};
        for (const r of where((r) => r.views > 4)) {
            const k = authorName(r);
            byName[k] = byName[k] || { count: 0, views: 0 };
            byName[k].count++;
            byName[k].views += r.views;
        }
        t.equal(filtered.totalGroups, Object.keys(byName).length);
        for (const item of filtered.items) {
            const want = byName[item.group['author.name']];
            t.ok(want, `group ${JSON.stringify(item.group)}`);
            t.equal(item.count, want.count);
            t.equal(item.sum.views, want.views);
        }
        const counts = filtered.items.map((i) => i.count);
        t.deepEqual(counts, [...counts].sort((a, b) => b - a), 'sort=-count');
        await expectError(pb.send(`/api/collections/${POSTS}/aggregate`, { query: { sum: 'title' } }), 400);
    }

    // --------------------------------------------------------------- batch
    step = 'batch disabled -> 403';
    await pb.settings.update({ batch: { enabled: false } });
    {
        const b = pb.createBatch();
        b.collection(POSTS).create({ title: 'Not allowed' });
        await expectError(b.send(), 403, { message: 'Batch requests are not allowed.' });
    }
    step = 'settings.update batch enabled';
    const settings = await pb.settings.update({ batch: { enabled: true } });
    t.equal(settings.batch.enabled, true);

    step = 'batch create + update + upsert + delete';
    {
        const target = where((r) => r.title === 'Post 05')[0];
        const doomed = where((r) => r.title === 'Post 06')[0];
        const upsertTarget = where((r) => r.title === 'Post 08')[0];
        const newId = 'qbatchupsert001';
        await ignore404(posts.delete(newId));
        const b = pb.createBatch();
        b.collection(POSTS).create({
            title: 'Batch created', views: 42, published: true, tags: ['go'], author: bob.id,
        });
        b.collection(POSTS).update(target.id, { 'views+': 100, 'tags+': 'db' });
        b.collection(POSTS).upsert({ id: newId, title: 'Batch upserted', views: 1 });
        b.collection(POSTS).upsert({ id: upsertTarget.id, title: 'Post 08 upserted' });
        b.collection(POSTS).delete(doomed.id);
        b.collection(POSTS).create(
            { title: 'Batch expanded', author: alice.id },
            { expand: 'author', fields: 'id,title,expand' },
        );
        const res = await b.send();
        t.ok(Array.isArray(res), 'batch result is an array');
        t.deepEqual(res.map((r) => r.status), [200, 200, 200, 200, 204, 200]);
        const [created, updated, upserted, upserted2, deleted, expanded] = res.map((r) => r.body);
        t.match(created.id, RECORD_ID);
        t.equal(created.title, 'Batch created');
        t.equal(created.views, 42);
        t.equal(created.collectionName, POSTS);
        t.equal(updated.id, target.id);
        t.equal(updated.views, target.views + 100);
        t.deepEqual(updated.tags, [...target.tags, 'db'].filter((x, i, a) => a.indexOf(x) === i));
        t.equal(upserted.id, newId, 'upsert with an unknown id creates');
        t.equal(upserted.title, 'Batch upserted');
        t.equal(upserted2.id, upsertTarget.id, 'upsert with an existing id updates');
        t.equal(upserted2.title, 'Post 08 upserted');
        t.equal(upserted2.views, upsertTarget.views, 'upsert update keeps other fields');
        t.equal(deleted, null, 'delete body is null');
        t.deepEqual(Object.keys(expanded).sort(), ['expand', 'id', 'title']);
        t.equal(expanded.expand.author.name, 'Alice');

        // Persisted, and visible through the normal API.
        t.equal((await posts.getOne(created.id)).views, 42);
        t.equal((await posts.getOne(target.id)).views, target.views + 100);
        t.equal((await posts.getOne(newId)).title, 'Batch upserted');
        t.equal((await posts.getOne(upsertTarget.id)).title, 'Post 08 upserted');
        await expectError(posts.getOne(doomed.id), 404);
        for (const rec of [created, updated, upserted, upserted2, expanded]) {
            model.set(rec.id, await posts.getOne(rec.id));
        }
        model.delete(doomed.id);
        t.equal(model.size, 27);
        t.equal((await posts.getList(1, 1)).totalItems, 27);
    }

    step = 'failing batch rolls back';
    {
        const before = (await posts.getList(1, 1)).totalItems;
        const victim = where((r) => r.title === 'Post 09')[0];
        const b = pb.createBatch();
        b.collection(POSTS).create({ title: 'Rolled back', views: 7 });
        b.collection(POSTS).update(victim.id, { views: 999 });
        b.collection(POSTS).delete(where((r) => r.title === 'Post 10')[0].id);
        b.collection(POSTS).create({ views: 1 }); // invalid: title is required
        const err = await expectError(b.send(), 400, { message: 'Batch transaction failed.' });
        const failed = err.response.data?.requests?.['3'];
        t.ok(failed, `data.requests.3 in ${JSON.stringify(err.response.data)}`);
        t.equal(failed.code, 'batch_request_failed');
        t.equal(failed.response?.status, 400);
        t.equal(failed.response?.message, 'Failed to create record.');
        t.equal(failed.response?.data?.title?.code, 'validation_required');
        t.deepEqual(Object.keys(err.response.data.requests), ['3'], 'only the failing request is named');
        t.equal((await posts.getList(1, 1)).totalItems, before, 'count unchanged');
        t.equal((await posts.getList(1, 1, { filter: "title = 'Rolled back'" })).totalItems, 0);
        t.equal((await posts.getOne(victim.id)).views, victim.views, 'update rolled back');
        t.equal((await posts.getFirstListItem("title = 'Post 10'")).title, 'Post 10', 'delete rolled back');
    }

    step = 'failing batch: missing record (inner 404)';
    {
        const before = (await posts.getList(1, 1)).totalItems;
        const b = pb.createBatch();
        b.collection(POSTS).create({ title: 'Also rolled back' });
        b.collection(POSTS).delete('nosuchrecord000');
        const err = await expectError(b.send(), 400, { message: 'Batch transaction failed.' });
        t.equal(err.response.data?.requests?.['1']?.code, 'batch_request_failed');
        t.equal(err.response.data?.requests?.['1']?.response?.status, 404);
        t.equal((await posts.getList(1, 1)).totalItems, before);
    }
    {
        const err = await expectError(pb.createBatch().send(), 400, { message: 'Invalid batch request data.' });
        t.equal(err.response.data?.requests?.code, 'validation_required');
    }

    step = 'batch respects rules (guest cannot create)';
    {
        const before = (await posts.getList(1, 1)).totalItems;
        const b = guest.createBatch();
        b.collection(POSTS).create({ title: 'Guest batch' });
        const err = await expectError(b.send(), 400);
        t.equal(err.response.data?.requests?.['0']?.response?.status, 403);
        t.equal((await posts.getList(1, 1)).totalItems, before);
    }

    step = 'aggregate after batch';
    {
        const agg = await pb.send(`/api/collections/${POSTS}/aggregate`, {
            query: { groupBy: 'published', sum: 'views' },
        });
        t.deepEqual(agg.items, expectAggregate(rows()));
    }

    // -------------------------------------------------------------- cleanup
    step = 'cleanup';
    await pb.settings.update({ batch: { enabled: false } });
    t.equal(await pb.collections.delete(POSTS), true);
    t.equal(await pb.collections.delete(AUTHORS), true);
    t.equal(await pb.collection('users').delete(user.id), true);

    step = 'done';
    console.log(JSON.stringify({ ok: true, checks: checkCount() }));
}

run(main, () => step);
