// Real-client CRUD test: drives a running Bastion server with the official
// `pocketbase` JS SDK (superuser auth, collections API, records API, errors).
//
// Usage:
//   node sdk_crud.mjs <baseURL> <superuserEmail> <superuserPassword>
// or set BASTION_URL, BASTION_SUPERUSER_EMAIL, BASTION_SUPERUSER_PASSWORD.
//
// On success the last stdout line is {"ok":true,"checks":N,...}. On the first failed
// check it prints `FAIL [step] ...` (plus the server response for SDK errors) to
// stderr and exits 1.

import assert from 'node:assert/strict';
import PocketBase, { ClientResponseError, getTokenPayload } from 'pocketbase';
import { checkCount, expectError as expectErrorOf, ignore404, run, t } from './harness.mjs';

const [baseURL, email, password] = [
    process.argv[2] || process.env.BASTION_URL,
    process.argv[3] || process.env.BASTION_SUPERUSER_EMAIL,
    process.argv[4] || process.env.BASTION_SUPERUSER_PASSWORD,
];
if (!baseURL || !email || !password) {
    console.error('usage: node sdk_crud.mjs <baseURL> <superuserEmail> <superuserPassword>');
    process.exit(2);
}

const COLLECTION = 'sdk_items';
// Unique per run, so re-runs against the same server don't collide.
const OWNER_EMAIL = `sdk-owner-${Date.now().toString(36)}@example.com`;
const SUPERUSERS_ID = 'pbc_3142635823';
const TS = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$/; // §1.6
const RECORD_ID = /^[a-z0-9]{15}$/;

let step = 'init';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sortedKeys = (obj) => Object.keys(obj).sort();

/** Awaits `promise`, which must reject with a ClientResponseError of `status` in
 * PocketBase's error shape. */
const expectError = (promise, status, options = {}) =>
    expectErrorOf(promise, status, { shape: true, ...options });

async function main() {
    const pb = new PocketBase(baseURL);
    pb.autoCancellation(false);
    const guest = new PocketBase(baseURL);
    guest.autoCancellation(false);

    // ------------------------------------------------------------------ auth
    step = 'superuser authWithPassword (wrong password)';
    const wrong = pb.collection('_superusers').authWithPassword(email, 'wrong-' + password);
    const authErr = await expectError(wrong, 400, { message: 'Failed to authenticate.' });
    t.deepEqual(authErr.response.data, {});
    t.equal(pb.authStore.isValid, false);

    step = 'superuser authWithPassword';
    const auth = await pb.collection('_superusers').authWithPassword(email, password);
    t.equal(typeof auth.token, 'string');
    t.equal(auth.record.email, email);
    t.equal(auth.record.collectionName, '_superusers');
    t.equal(auth.record.collectionId, SUPERUSERS_ID);
    t.match(auth.record.id, RECORD_ID);
    t.equal('password' in auth.record, false, 'password never output');
    t.equal('tokenKey' in auth.record, false, 'tokenKey never output');
    t.equal(pb.authStore.isValid, true, 'authStore.isValid');
    t.equal(pb.authStore.isSuperuser, true, 'authStore.isSuperuser');
    t.equal(pb.authStore.token, auth.token);
    t.equal(pb.authStore.record.id, auth.record.id);
    const claims = getTokenPayload(auth.token);
    t.equal(claims.type, 'auth');
    t.equal(claims.id, auth.record.id);
    t.equal(claims.collectionId, SUPERUSERS_ID);
    t.equal(claims.refreshable, true);
    t.ok(claims.exp > Date.now() / 1000, 'exp in the future');

    step = 'collections API requires a superuser';
    await expectError(guest.collections.getList(1, 10), 401);
    await expectError(guest.collection('_superusers').authRefresh(), 401);

    // Idempotent re-runs against the same server.
    step = 'cleanup from a previous run';
    await ignore404(pb.collections.delete(COLLECTION));

    // -------------------------------------------------------- related user
    step = 'users collection + owner record';
    const users = await pb.collections.getOne('users');
    t.equal(users.id, '_pb_users_auth_');
    t.equal(users.type, 'auth');
    const owner = await pb.collection('users').create({
        email: OWNER_EMAIL,
        password: 'owner-pass-123',
        passwordConfirm: 'owner-pass-123',
        name: 'Owner',
    });
    t.match(owner.id, RECORD_ID);
    t.equal(owner.email, OWNER_EMAIL);
    t.equal(owner.verified, false);
    t.equal('password' in owner, false);

    // ---------------------------------------------------------- collection
    step = 'collections.create';
    const fieldsIn = [
        { name: 'title', type: 'text', required: true, min: 3, max: 50 },
        { name: 'views', type: 'number', min: 0 },
        { name: 'active', type: 'bool' },
        { name: 'contact', type: 'email' },
        { name: 'homepage', type: 'url' },
        { name: 'due', type: 'date' },
        { name: 'status', type: 'select', maxSelect: 1, values: ['draft', 'published', 'archived'] },
        { name: 'tags', type: 'select', maxSelect: 3, values: ['a', 'b', 'c', 'd'] },
        { name: 'meta', type: 'json' },
        { name: 'owner', type: 'relation', collectionId: users.id, maxSelect: 1, cascadeDelete: false },
        { name: 'location', type: 'geoPoint' },
        { name: 'created', type: 'autodate', onCreate: true, onUpdate: false },
        { name: 'updated', type: 'autodate', onCreate: true, onUpdate: true },
    ];
    const coll = await pb.collections.create({
        name: COLLECTION,
        type: 'base',
        listRule: '',
        viewRule: '',
        createRule: '',
        updateRule: '',
        deleteRule: '',
        fields: fieldsIn,
    });
    t.equal(typeof coll.id, 'string');
    t.ok(coll.id.length > 0);
    t.equal(coll.name, COLLECTION);
    t.equal(coll.type, 'base');
    t.equal(coll.system, false);
    for (const rule of ['listRule', 'viewRule', 'createRule', 'updateRule', 'deleteRule']) {
        t.equal(coll[rule], '', `${rule} is "" (not null)`);
    }
    t.ok(Array.isArray(coll.indexes), 'indexes array');
    t.match(coll.created, TS);
    t.match(coll.updated, TS);
    t.equal(coll.fields[0].name, 'id', 'auto-added id field first');
    t.equal(coll.fields[0].primaryKey, true);
    t.deepEqual(
        coll.fields.map((f) => f.name),
        ['id', ...fieldsIn.map((f) => f.name)],
    );
    const field = Object.fromEntries(coll.fields.map((f) => [f.name, f]));
    for (const f of fieldsIn) {
        t.equal(field[f.name].type, f.type, `${f.name}.type`);
        t.equal(typeof field[f.name].id, 'string', `${f.name}.id`);
        t.ok(field[f.name].id.length > 0, `${f.name}.id non-empty`);
    }
    t.equal(field.title.required, true);
    t.equal(field.title.min, 3);
    t.equal(field.title.max, 50);
    t.equal(field.views.min, 0);
    t.deepEqual(field.status.values, ['draft', 'published', 'archived']);
    t.equal(field.status.maxSelect, 1);
    t.deepEqual(field.tags.values, ['a', 'b', 'c', 'd']);
    t.equal(field.tags.maxSelect, 3);
    t.equal(field.owner.collectionId, users.id);
    t.equal(field.owner.maxSelect, 1);
    t.equal(field.created.onCreate, true);
    t.equal(field.created.onUpdate, false);
    t.equal(field.updated.onUpdate, true);

    step = 'collections.create duplicate name';
    await expectError(pb.collections.create({ name: COLLECTION, type: 'base' }), 400, {
        message: 'Failed to create collection.',
        fields: { name: 'validation_collection_name_exists' },
    });

    step = 'collections.getOne / getList / getFullList';
    const byName = await pb.collections.getOne(COLLECTION);
    t.equal(byName.id, coll.id);
    t.deepEqual(byName.fields, coll.fields);
    const byId = await pb.collections.getOne(coll.id);
    t.equal(byId.name, COLLECTION);
    const filtered = await pb.collections.getList(1, 10, { filter: `name = '${COLLECTION}'` });
    t.deepEqual(filtered.items.map((c) => c.name), [COLLECTION]);
    const collList = await pb.collections.getList(1, 200, { sort: 'name' });
    t.deepEqual(sortedKeys(collList), ['items', 'page', 'perPage', 'totalItems', 'totalPages']);
    t.equal(collList.page, 1);
    t.equal(collList.perPage, 200);
    t.equal(collList.totalItems, collList.items.length);
    t.equal(collList.totalPages, 1);
    const names = collList.items.map((c) => c.name);
    for (const n of ['_superusers', 'users', COLLECTION]) {
        t.ok(names.includes(n), `${n} listed in ${names}`);
    }
    t.deepEqual(collList.items.find((c) => c.name === COLLECTION), byName);
    const allColls = await pb.collections.getFullList();
    t.equal(allColls.length, collList.totalItems);
    await expectError(pb.collections.getOne('sdk_no_such_collection'), 404);

    // ------------------------------------------------------------- records
    const items = pb.collection(COLLECTION);

    step = 'records.create (all field types)';
    const full = await items.create({
        title: 'First item',
        views: 10,
        active: true,
        contact: 'someone@example.com',
        homepage: 'https://example.com/path?q=1',
        due: '2024-05-06 07:08:09.123Z',
        status: 'draft',
        tags: ['a', 'b'],
        meta: { nested: [1, 2, { deep: null }], s: 'x' },
        owner: owner.id,
        location: { lon: 23.32, lat: 42.69 },
        created: '2000-01-01 00:00:00.000Z', // autodate input must be ignored
        unknownKey: 'ignored',
    });
    t.match(full.id, RECORD_ID);
    t.equal(full.collectionId, coll.id);
    t.equal(full.collectionName, COLLECTION);
    t.equal(full.title, 'First item');
    t.equal(full.views, 10);
    t.equal(full.active, true);
    t.equal(full.contact, 'someone@example.com');
    t.equal(full.homepage, 'https://example.com/path?q=1');
    t.equal(full.due, '2024-05-06 07:08:09.123Z');
    t.equal(full.status, 'draft');
    t.deepEqual(full.tags, ['a', 'b']);
    t.deepEqual(full.meta, { nested: [1, 2, { deep: null }], s: 'x' });
    t.equal(full.owner, owner.id);
    t.deepEqual(full.location, { lon: 23.32, lat: 42.69 });
    t.match(full.created, TS);
    t.match(full.updated, TS);
    t.notEqual(full.created, '2000-01-01 00:00:00.000Z', 'submitted autodate ignored');
    t.equal('unknownKey' in full, false, 'unknown keys ignored');
    t.equal('expand' in full, false, 'no expand without ?expand');

    step = 'records.create (defaults / zero values, RFC3339 date input)';
    const minimal = await items.create({ title: 'Zero', due: '2024-05-06T07:08:09Z' });
    t.deepEqual(sortedKeys(minimal), [
        'active', 'collectionId', 'collectionName', 'contact', 'created', 'due', 'homepage', 'id',
        'location', 'meta', 'owner', 'status', 'tags', 'title', 'updated', 'views',
    ]);
    t.equal(minimal.due, '2024-05-06 07:08:09.000Z', 'RFC3339 input normalised');
    t.equal(minimal.views, 0);
    t.equal(minimal.active, false);
    t.equal(minimal.contact, '');
    t.equal(minimal.homepage, '');
    t.equal(minimal.status, '', 'single select zero value');
    t.deepEqual(minimal.tags, [], 'multi select zero value');
    t.equal(minimal.meta, null, 'json zero value');
    t.equal(minimal.owner, '', 'single relation zero value');
    t.deepEqual(minimal.location, { lon: 0, lat: 0 }, 'geoPoint zero value');

    step = 'records.create with a client-chosen id';
    const customId = 'sdkcustomid0001';
    const custom = await items.create({ id: customId, title: 'Custom id' });
    t.equal(custom.id, customId);
    await expectError(items.create({ id: customId, title: 'Dup id' }), 400, {
        fields: { id: 'validation_not_unique' },
    });

    step = 'records.getOne';
    const fetched = await items.getOne(full.id);
    t.deepEqual(fetched, full);
    const picked = await items.getOne(full.id, { fields: 'id,title' });
    t.deepEqual(picked, { id: full.id, title: 'First item' });

    step = 'records.getList(1, 10) envelope';
    const page = await items.getList(1, 10);
    t.deepEqual(sortedKeys(page), ['items', 'page', 'perPage', 'totalItems', 'totalPages']);
    t.equal(page.page, 1);
    t.equal(page.perPage, 10);
    t.equal(page.totalItems, 3);
    t.equal(page.totalPages, 1);
    t.equal(page.items.length, 3);
    t.deepEqual(page.items.map((r) => r.id).sort(), [full.id, minimal.id, customId].sort());
    t.deepEqual(page.items.find((r) => r.id === full.id), full);

    step = 'records.getList sort/paging/skipTotal/getFullList';
    const sorted = await items.getList(1, 1, { sort: '-views,title' });
    t.equal(sorted.totalItems, 3);
    t.equal(sorted.totalPages, 3);
    t.equal(sorted.items.length, 1);
    t.equal(sorted.items[0].id, full.id);
    const page2 = await items.getList(2, 2, { sort: 'title' });
    t.equal(page2.page, 2);
    t.deepEqual(page2.items.map((r) => r.title), ['Zero']);
    const skipped = await items.getList(1, 10, { skipTotal: true });
    t.equal(skipped.totalItems, -1);
    t.equal(skipped.totalPages, -1);
    t.equal(skipped.items.length, 3);
    const all = await items.getFullList({ sort: 'created' });
    t.equal(all.length, 3);
    t.deepEqual(all.map((r) => r.id).sort(), page.items.map((r) => r.id).sort());

    step = 'guest access with empty ("") rules';
    const guestPage = await guest.collection(COLLECTION).getList(1, 10);
    t.equal(guestPage.totalItems, 3);
    const guestOne = await guest.collection(COLLECTION).getOne(full.id);
    t.equal(guestOne.title, 'First item');

    step = 'records.update (+ number/select modifiers)';
    await sleep(5); // make `updated` observably move
    const upd = await items.update(full.id, {
        title: 'First item (edited)',
        'views+': 5,
        'tags+': 'c',
        'tags-': 'a',
        active: false,
        created: '2000-01-01 00:00:00.000Z',
    });
    t.equal(upd.id, full.id);
    t.equal(upd.title, 'First item (edited)');
    t.equal(upd.views, 15, 'views+ 5');
    t.deepEqual(upd.tags, ['b', 'c'], 'tags+ / tags-');
    t.equal(upd.active, false);
    t.equal(upd.created, full.created, 'created unchanged on update');
    t.match(upd.updated, TS);
    t.ok(upd.updated > full.updated, `updated moved forward (${full.updated} -> ${upd.updated})`);
    t.equal(upd.contact, full.contact, 'untouched field kept');
    t.deepEqual(upd.location, full.location);
    const upd2 = await items.update(full.id, { 'views-': 3, location: { lon: -0.5, lat: -10 } });
    t.equal(upd2.views, 12, 'views- 3');
    t.deepEqual(upd2.location, { lon: -0.5, lat: -10 });
    t.deepEqual(await items.getOne(full.id), upd2);

    // ------------------------------------------------------------ 400 paths
    step = 'create: missing required text';
    await expectError(items.create({ views: 1 }), 400, {
        message: 'Failed to create record.',
        fields: { title: 'validation_required' },
    });

    step = 'create: bad email';
    await expectError(items.create({ title: 'Valid title', contact: 'not-an-email' }), 400, {
        message: 'Failed to create record.',
        fields: { contact: 'validation_is_email' },
    });

    step = 'create: one error per invalid field';
    const multi = await expectError(
        items.create({
            title: 'ab',
            views: -1,
            homepage: 'not a url',
            status: 'nope',
            tags: ['a', 'b', 'c', 'd'],
            owner: 'missingrelid000',
            location: { lon: 10, lat: 100 },
        }),
        400,
        {
            message: 'Failed to create record.',
            fields: {
                title: 'validation_min_text_constraint',
                views: 'validation_min_number_constraint',
                homepage: 'validation_invalid_url',
                status: 'validation_invalid_value',
                tags: 'validation_too_many_values',
                owner: 'validation_missing_rel_records',
                location: 'validation_invalid_latitude',
            },
        },
    );
    t.deepEqual(
        sortedKeys(multi.response.data),
        ['homepage', 'location', 'owner', 'status', 'tags', 'title', 'views'],
        'only the invalid fields are reported',
    );

    step = 'create: text max';
    await expectError(items.create({ title: 'x'.repeat(51) }), 400, {
        fields: { title: 'validation_max_text_constraint' },
    });

    step = 'update: validation errors';
    await expectError(items.update(full.id, { contact: 'still-not-an-email' }), 400, {
        message: 'Failed to update record.',
        fields: { contact: 'validation_is_email' },
    });
    await expectError(items.update(full.id, { 'views-': 100 }), 400, {
        message: 'Failed to update record.',
        fields: { views: 'validation_min_number_constraint' },
    });
    t.deepEqual(await items.getOne(full.id), upd2, 'failed updates change nothing');
    t.equal((await items.getList(1, 1)).totalItems, 3, 'failed creates insert nothing');

    // --------------------------------------------------------------- delete
    step = 'records.delete';
    t.equal(await items.delete(minimal.id), true);
    await expectError(items.getOne(minimal.id), 404);
    await expectError(items.update(minimal.id, { title: 'Ghost' }), 404);
    await expectError(items.delete(minimal.id), 404);
    t.equal((await items.getList(1, 10)).totalItems, 2);

    // ---------------------------------------------------------- authRefresh
    step = 'superuser authRefresh';
    const refreshed = await pb.collection('_superusers').authRefresh();
    t.equal(typeof refreshed.token, 'string');
    t.equal(refreshed.record.id, auth.record.id);
    t.equal(refreshed.record.email, email);
    t.equal(pb.authStore.token, refreshed.token);
    t.equal(pb.authStore.isValid, true);
    t.equal(pb.authStore.isSuperuser, true);
    const refreshedClaims = getTokenPayload(refreshed.token);
    t.equal(refreshedClaims.type, 'auth');
    t.equal(refreshedClaims.id, auth.record.id);
    t.ok(refreshedClaims.exp >= claims.exp);
    // the refreshed token still authorizes superuser-only endpoints
    t.equal((await pb.collections.getOne(COLLECTION)).id, coll.id);

    // -------------------------------------------------------------- cleanup
    step = 'cleanup';
    t.equal(await pb.collections.delete(COLLECTION), true);
    await expectError(pb.collections.getOne(COLLECTION), 404);
    await expectError(items.getList(1, 10), 404);
    t.equal(await pb.collection('users').delete(owner.id), true);
    pb.authStore.clear();
    t.equal(pb.authStore.isValid, false);
    t.equal(pb.authStore.isSuperuser, false);

    step = 'done';
    console.log(JSON.stringify({ ok: true, checks: checkCount() }));
}

run(main, () => step);
