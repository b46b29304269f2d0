// Real-client files test: drives a running Bastion server with the official `pocketbase`
// JS SDK as an app would use it for files: multipart uploads (FormData, and plain objects
// holding File values), pb.files.getURL with thumbs and downloads, the `f+` / `f-` / clear
// modifiers, protected files with pb.files.getToken(), batch uploads, and the 404s of files
// that are gone.
//
// Usage:
//   node sdk_files.mjs <baseURL> <superuserEmail> <superuserPassword>
// or set BASTION_URL, BASTION_SUPERUSER_EMAIL, BASTION_SUPERUSER_PASSWORD.
//
// The PNG is made here by hand (zlib from node:zlib, a CRC32 computed here): no npm
// package beyond pocketbase. The script cleans up after itself and tolerates the leftovers
// of an interrupted earlier run.
//
// On success the last stdout line is {"ok":true,"checks":N}. On the first failed check it
// prints `FAIL [step] ...` (plus the server response for SDK errors) to stderr and exits 1.

import { deflateSync } from 'node:zlib';
import PocketBase from 'pocketbase';
import { checkCount, expectError as expectErrorOf, ignore404, run, t } from './harness.mjs';

const [baseURL, email, password] = [
    process.argv[2] || process.env.BASTION_URL,
    process.argv[3] || process.env.BASTION_SUPERUSER_EMAIL,
    process.argv[4] || process.env.BASTION_SUPERUSER_PASSWORD,
];
if (!baseURL || !email || !password) {
    console.error('usage: node sdk_files.mjs <baseURL> <superuserEmail> <superuserPassword>');
    process.exit(2);
}

const COLLECTION = 'sdk_files';
const RUN = Date.now().toString(36);
const ALICE_EMAIL = `sdk-files-alice-${RUN}@example.com`;
const BOB_EMAIL = `sdk-files-bob-${RUN}@example.com`;
const USER_PASSWORD = 'sdk-files-password-1';
const RECORD_ID = /^[a-z0-9]{15}$/;
/** A stored name: the original's snake-cased stem, `_`, ten random characters, the extension. */
const stored = (stem, ext) => new RegExp(`^${stem}_[a-z0-9]{10}\\.${ext}$`);

let step = 'init';

const expectError = (promise, status, options = {}) =>
    expectErrorOf(promise, status, { shape: true, ...options });

// ------------------------------------------------------------------------ PNG by hand

const CRC_TABLE = (() => {
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        table[n] = c >>> 0;
    }
    return table;
})();

function crc32(bytes) {
    let c = 0xffffffff;
    for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'latin1');
    data.copy(out, 8);
    out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A `width` x `height` 8-bit RGB PNG filled with one colour. */
function solidPng(width, height, [r, g, b]) {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // colour type: RGB
    ihdr[10] = 0; // compression
    ihdr[11] = 0; // filter
    ihdr[12] = 0; // no interlace
    const row = 1 + width * 3;
    const raw = Buffer.alloc(row * height);
    for (let y = 0; y < height; y++) {
        raw[y * row] = 0; // filter: none
        for (let x = 0; x < width; x++) raw.set([r, g, b], y * row + 1 + x * 3);
    }
    return Buffer.concat([
        PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0)),
    ]);
}

/** {width, height} from a PNG's IHDR (checks the signature and the chunk's CRC). */
function pngSize(bytes) {
    const buf = Buffer.from(bytes);
    t.ok(buf.length > 33, `PNG of ${buf.length} bytes`);
    t.deepEqual([...buf.subarray(0, 8)], [...PNG_SIGNATURE], 'PNG signature');
    t.equal(buf.toString('latin1', 12, 16), 'IHDR', 'first chunk is IHDR');
    t.equal(buf.readUInt32BE(8), 13, 'IHDR length');
    t.equal(buf.readUInt32BE(29), crc32(buf.subarray(12, 29)), 'IHDR CRC');
    return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

const COVER_PNG = solidPng(80, 40, [200, 40, 90]);
const OTHER_PNG = solidPng(30, 60, [10, 160, 60]);
const enc = (text) => Buffer.from(text, 'utf8');

// ------------------------------------------------------------------------ fetch helpers

/** GET `url` with fetch: {status, headers, bytes}. */
async function get(url, headers = {}) {
    const res = await fetch(url, { headers });
    return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

/** `url` must answer 200 with `bytes` (and `type` as its Content-Type, when given). */
async function expectBytes(url, bytes, { type, inline, headers } = {}) {
    const res = await get(url, headers);
    t.equal(res.status, 200, `GET ${url}`);
    t.ok(res.bytes.equals(Buffer.from(bytes)), `bytes of ${url}`);
    t.equal(res.headers.get('content-length'), String(bytes.length));
    if (type !== undefined) t.equal(res.headers.get('content-type').split(';')[0], type, `type of ${url}`);
    if (inline !== undefined) {
        t.match(res.headers.get('content-disposition'), inline ? /^inline; / : /^attachment; /);
    }
    return res;
}

async function expect404(url, headers = {}) {
    const res = await get(url, headers);
    t.equal(res.status, 404, `GET ${url} must be 404`);
    return res;
}

/** `url` must answer 200 with a PNG of `width` x `height`. */
async function expectThumb(url, width, height) {
    const res = await get(url);
    t.equal(res.status, 200, `GET ${url}`);
    t.equal(res.headers.get('content-type'), 'image/png', `type of ${url}`);
    t.deepEqual(pngSize(res.bytes), { width, height }, `size of ${url}`);
    return res;
}

// ------------------------------------------------------------------------ the script

async function main() {
    const su = new PocketBase(baseURL);
    su.autoCancellation(false);
    const alice = new PocketBase(baseURL);
    alice.autoCancellation(false);
    const bob = new PocketBase(baseURL);
    bob.autoCancellation(false);
    const guest = new PocketBase(baseURL);
    guest.autoCancellation(false);

    step = 'hand-made PNG';
    t.deepEqual(pngSize(COVER_PNG), { width: 80, height: 40 });
    t.equal(crc32(enc('123456789')), 0xcbf43926, 'CRC32 check value');

    step = 'superuser authWithPassword';
    await su.collection('_superusers').authWithPassword(email, password);
    t.equal(su.authStore.isSuperuser, true);

    step = 'cleanup from a previous run';
    await ignore404(su.collections.delete(COLLECTION));

    // ------------------------------------------------------------ users + collection
    step = 'users';
    const users = await su.collections.getOne('users');
    const mkUser = (mail, name) => su.collection('users').create({
        email: mail, password: USER_PASSWORD, passwordConfirm: USER_PASSWORD, name,
    });
    const aliceRec = await mkUser(ALICE_EMAIL, 'Alice');
    const bobRec = await mkUser(BOB_EMAIL, 'Bob');

    step = 'collections.create with file fields';
    const ownerRule = 'owner = @request.auth.id';
    const coll = await su.collections.create({
        name: COLLECTION,
        type: 'base',
        listRule: ownerRule,
        viewRule: ownerRule,
        createRule: "@request.auth.id != ''",
        updateRule: ownerRule,
        fields: [
            { name: 'cover', type: 'file', maxSelect: 1, thumbs: ['40x40', '0x20'], mimeTypes: ['image/png'] },
            { name: 'attachments', type: 'file', maxSelect: 3 },
            { name: 'secret', type: 'file', maxSelect: 1, protected: true },
            { name: 'owner', type: 'relation', collectionId: users.id, maxSelect: 1 },
        ],
    });
    t.equal(coll.name, COLLECTION);
    t.equal(coll.deleteRule, null);
    const field = Object.fromEntries(coll.fields.map((f) => [f.name, f]));
    t.equal(field.cover.type, 'file');
    t.equal(field.cover.maxSelect, 1);
    t.deepEqual(field.cover.thumbs, ['40x40', '0x20']);
    t.deepEqual(field.cover.mimeTypes, ['image/png']);
    t.equal(field.cover.protected, false);
    t.equal(field.cover.maxSize, 0);
    t.equal(field.attachments.maxSelect, 3);
    t.deepEqual(field.attachments.thumbs, []);
    t.deepEqual(field.attachments.mimeTypes, []);
    t.equal(field.secret.protected, true);
    t.equal(field.owner.collectionId, users.id);

    step = 'users sign in';
    await alice.collection('users').authWithPassword(ALICE_EMAIL, USER_PASSWORD);
    await bob.collection('users').authWithPassword(BOB_EMAIL, USER_PASSWORD);
    t.equal(alice.authStore.record.id, aliceRec.id);
    t.equal(bob.authStore.record.id, bobRec.id);
    const files = alice.collection(COLLECTION);

    // ------------------------------------------------------------ create: FormData
    step = 'create with FormData';
    const notes = 'first attachment\n';
    const readme = 'second attachment, from a Blob\n';
    const secretText = 'the protected bytes\n';
    const fd = new FormData();
    fd.append('owner', aliceRec.id);
    fd.append('cover', new File([COVER_PNG], 'Cover Image.png', { type: 'image/png' }));
    fd.append('attachments', new File([notes], 'notes.txt', { type: 'text/plain' }));
    fd.append('attachments', new Blob([readme], { type: 'text/plain' }), 'Read Me.txt');
    fd.append('secret', new File([secretText], 'secret.txt'));
    const rec = await files.create(fd);
    t.match(rec.id, RECORD_ID);
    t.equal(rec.collectionId, coll.id);
    t.equal(rec.collectionName, COLLECTION);
    t.equal(rec.owner, aliceRec.id);
    t.match(rec.cover, stored('cover_image', 'png'));
    t.equal(rec.attachments.length, 2);
    t.match(rec.attachments[0], stored('notes', 'txt'));
    t.match(rec.attachments[1], stored('read_me', 'txt'));
    t.match(rec.secret, stored('secret', 'txt'));
    t.deepEqual(await files.getOne(rec.id), rec, 'getOne returns what create returned');

    step = "guests cannot create; bob cannot see alice's record";
    {
        const g = new FormData();
        g.append('owner', aliceRec.id);
        g.append('cover', new File([COVER_PNG], 'guest.png'));
        await expectError(guest.collection(COLLECTION).create(g), 400, { message: 'Failed to create record.' });
        t.equal((await bob.collection(COLLECTION).getList(1, 10)).totalItems, 0, "bob lists none of alice's");
        await expectError(bob.collection(COLLECTION).getOne(rec.id), 404);
    }

    step = 'mimeTypes are checked on the bytes';
    {
        const bad = new FormData();
        bad.append('owner', aliceRec.id);
        bad.append('cover', new File(['not an image at all'], 'fake.png', { type: 'image/png' }));
        await expectError(files.create(bad), 400, { fields: { cover: 'validation_invalid_mime_type' } });
        const okay = new FormData();
        okay.append('owner', aliceRec.id);
        okay.append('cover', new File([OTHER_PNG], 'no-extension', { type: 'application/octet-stream' }));
        const made = await files.create(okay);
        // no extension given: it comes from the sniffed type, as in PocketBase
        t.match(made.cover, stored('no_extension', 'png'));
        t.deepEqual(made.attachments, []);
        t.equal(made.secret, '');
        await expectBytes(alice.files.getURL(made, made.cover), OTHER_PNG, { type: 'image/png', inline: true });
        await su.collection(COLLECTION).delete(made.id);
    }

    // ------------------------------------------------------------ create: plain object
    step = 'create with a plain object holding File values';
    const plainA = 'plain a';
    const plainB = 'plain b';
    const plain = await files.create({
        owner: aliceRec.id,
        cover: new File([OTHER_PNG], 'plain.png', { type: 'image/png' }),
        attachments: [new File([plainA], 'alpha.txt'), new File([plainB], 'beta.txt')],
    });
    t.equal(plain.owner, aliceRec.id);
    t.match(plain.cover, stored('plain', 'png'));
    t.equal(plain.attachments.length, 2);
    t.match(plain.attachments[0], stored('alpha', 'txt'));
    t.match(plain.attachments[1], stored('beta', 'txt'));
    t.equal(plain.secret, '');
    await expectBytes(alice.files.getURL(plain, plain.attachments[0]), enc(plainA));
    await expectBytes(alice.files.getURL(plain, plain.attachments[1]), enc(plainB));
    t.equal((await files.getList(1, 10)).totalItems, 2, 'alice lists her two records');

    // ------------------------------------------------------------ downloads and thumbs
    step = 'getURL: the original';
    const coverURL = alice.files.getURL(rec, rec.cover);
    t.equal(coverURL, `${baseURL.replace(/\/$/, '')}/api/files/${coll.id}/${rec.id}/${rec.cover}`);
    const original = await expectBytes(coverURL, COVER_PNG, { type: 'image/png', inline: true });
    t.deepEqual(pngSize(original.bytes), { width: 80, height: 40 });
    t.equal(original.headers.get('content-disposition'), `inline; filename="${rec.cover}"`);
    t.equal(original.headers.get('x-content-type-options'), 'nosniff');
    t.match(original.headers.get('content-security-policy'), /sandbox/);
    // not protected: anyone with the URL gets the file, the view rule notwithstanding
    await expectBytes(guest.files.getURL(rec, rec.cover), COVER_PNG, { type: 'image/png' });

    step = 'getURL: ETag, 304 and a range';
    {
        const etag = original.headers.get('etag');
        t.ok(etag, 'ETag');
        t.equal((await get(coverURL, { 'If-None-Match': etag })).status, 304);
        const part = await get(coverURL, { Range: 'bytes=0-7' });
        t.equal(part.status, 206);
        t.ok(part.bytes.equals(PNG_SIGNATURE), 'the first 8 bytes');
        t.equal(part.headers.get('content-range'), `bytes 0-7/${COVER_PNG.length}`);
    }

    step = 'getURL: download';
    {
        const res = await expectBytes(alice.files.getURL(rec, rec.cover, { download: true }), COVER_PNG, {
            type: 'image/png', inline: false,
        });
        t.equal(res.headers.get('content-disposition'), `attachment; filename="${rec.cover}"`);
        await expectBytes(alice.files.getURL(rec, rec.cover, { download: 1 }), COVER_PNG, { inline: false });
        // download: false is dropped by the SDK
        t.equal(alice.files.getURL(rec, rec.cover, { download: false }), coverURL);
    }

    step = 'getURL: thumbs';
    t.equal(alice.files.getURL(rec, rec.cover, { thumb: '40x40' }), `${coverURL}?thumb=40x40`);
    {
        const thumb = await expectThumb(alice.files.getURL(rec, rec.cover, { thumb: '40x40' }), 40, 40);
        t.equal(thumb.headers.get('content-disposition'), `inline; filename="40x40_${rec.cover}"`);
        t.notEqual(thumb.headers.get('etag'), original.headers.get('etag'));
    }
    await expectThumb(alice.files.getURL(rec, rec.cover, { thumb: '0x20' }), 40, 20);
    await expectThumb(alice.files.getURL(rec, rec.cover, { thumb: '100x100' }), 100, 100);
    // made once and kept: asking again answers the same bytes
    {
        const a = await get(alice.files.getURL(rec, rec.cover, { thumb: '40x40' }));
        const b = await get(alice.files.getURL(rec, rec.cover, { thumb: '40x40' }));
        t.ok(a.bytes.equals(b.bytes), 'the same thumb twice');
    }
    // many asking at once for a thumb not made yet all get the same one
    {
        const url = alice.files.getURL(plain, plain.cover, { thumb: '40x40' });
        const all = await Promise.all(Array.from({ length: 8 }, () => get(url)));
        for (const res of all) {
            t.equal(res.status, 200);
            t.ok(res.bytes.equals(all[0].bytes), 'the same thumb for everyone');
        }
        t.deepEqual(pngSize(all[0].bytes), { width: 40, height: 40 });
    }
    // a size the field does not list answers the original
    await expectBytes(alice.files.getURL(rec, rec.cover, { thumb: '10x10' }), COVER_PNG, { type: 'image/png' });
    // the same spec on another source keeps that source's ratio (30x60 -> 10x20)
    await expectThumb(alice.files.getURL(plain, plain.cover, { thumb: '0x20' }), 10, 20);
    // a file that is not an image answers itself, thumb or not
    await expectBytes(alice.files.getURL(rec, rec.attachments[0], { thumb: '100x100' }), enc(notes));

    step = 'getURL: text attachments';
    for (const [name, text] of [[rec.attachments[0], notes], [rec.attachments[1], readme]]) {
        const res = await expectBytes(alice.files.getURL(rec, name), enc(text), { inline: false });
        t.match(res.headers.get('content-type'), /^text\/plain/);
    }

    step = 'getURL: unknown names, records and collections';
    await expect404(alice.files.getURL(rec, 'nope_0123456789.txt'));
    await expect404(alice.files.getURL({ ...rec, id: 'aaaaaaaaaaaaaaa' }, rec.cover));
    await expect404(alice.files.getURL({ ...rec, collectionId: 'missing_coll', collectionName: '' }, rec.cover));
    await expect404(alice.files.getURL(rec, plain.cover)); // another record's file
    t.equal(alice.files.getURL(rec, ''), '', 'no name, no URL');

    // ------------------------------------------------------------ attachments+ / - / clear
    step = 'attachments+ with FormData';
    const third = 'third attachment';
    const before = rec.attachments;
    let upd;
    {
        const more = new FormData();
        more.append('attachments+', new File([third], 'Third File.txt'));
        upd = await files.update(rec.id, more);
        t.equal(upd.attachments.length, 3);
        t.deepEqual(upd.attachments.slice(0, 2), before, 'appended after the others');
        t.match(upd.attachments[2], stored('third_file', 'txt'));
        t.equal(upd.cover, rec.cover, 'cover untouched');
        t.equal(upd.secret, rec.secret, 'secret untouched');
        await expectBytes(alice.files.getURL(upd, upd.attachments[2]), enc(third));
    }

    step = 'attachments+ beyond maxSelect';
    {
        const tooMany = new FormData();
        tooMany.append('attachments+', new File(['four'], 'four.txt'));
        await expectError(files.update(rec.id, tooMany), 400, { fields: { attachments: 'validation_too_many_files' } });
        t.deepEqual((await files.getOne(rec.id)).attachments, upd.attachments, 'nothing changed');
    }

    step = 'attachments- with a plain object';
    {
        const [gone, ...kept] = upd.attachments;
        const less = await files.update(rec.id, { 'attachments-': [gone] });
        t.deepEqual(less.attachments, kept);
        await expect404(alice.files.getURL(less, gone));
        await expectBytes(alice.files.getURL(less, kept[0]), enc(readme));
        // one name as a string works too
        const one = await files.update(rec.id, { 'attachments-': kept[1] });
        t.deepEqual(one.attachments, [kept[0]]);
        await expect404(alice.files.getURL(one, kept[1]));
        upd = one;
    }

    step = '+attachments, and attachments- in FormData';
    {
        const form = new FormData();
        form.append('+attachments', new File(['first now'], 'first.txt'));
        const res = await files.update(rec.id, form);
        t.equal(res.attachments.length, 2);
        t.match(res.attachments[0], stored('first', 'txt'));
        t.deepEqual(res.attachments.slice(1), upd.attachments, 'prepended before the others');
        await expectBytes(alice.files.getURL(res, res.attachments[0]), enc('first now'));
        const drop = new FormData();
        drop.append('attachments-', res.attachments[0]);
        const back = await files.update(rec.id, drop);
        t.deepEqual(back.attachments, upd.attachments);
        await expect404(alice.files.getURL(res, res.attachments[0]));
    }

    step = 'resending the current names keeps them (FormData with new uploads)';
    {
        const form = new FormData();
        form.append('attachments', upd.attachments[0]);
        form.append('attachments', new File(['again'], 'again.txt'));
        const res = await files.update(rec.id, form);
        t.equal(res.attachments.length, 2);
        t.equal(res.attachments[0], upd.attachments[0]);
        t.match(res.attachments[1], stored('again', 'txt'));
        upd = res;
    }

    step = 'clearing attachments';
    {
        // FormData: an empty value clears
        const form = new FormData();
        form.append('attachments+', new File(['short-lived'], 'short.txt'));
        const grown = await files.update(rec.id, form);
        t.equal(grown.attachments.length, 3);
        const empty = new FormData();
        empty.append('attachments', '');
        const none = await files.update(rec.id, empty);
        t.deepEqual(none.attachments, []);
        for (const name of grown.attachments) await expect404(alice.files.getURL(none, name));
        // a plain object: [] clears
        const refill = new FormData();
        for (const name of ['one.txt', 'two.txt']) refill.append('attachments', new File([name], name));
        upd = await files.update(rec.id, refill);
        t.equal(upd.attachments.length, 2);
        const cleared = await files.update(rec.id, { attachments: [] });
        t.deepEqual(cleared.attachments, []);
        for (const name of upd.attachments) await expect404(alice.files.getURL(cleared, name));
        t.equal(cleared.cover, rec.cover);
        upd = cleared;
    }

    step = 'replacing the single cover deletes the old one';
    {
        const form = new FormData();
        form.append('cover', new File([COVER_PNG], 'new cover.png'));
        const res = await files.update(rec.id, form);
        t.match(res.cover, stored('new_cover', 'png'));
        t.notEqual(res.cover, rec.cover);
        await expect404(alice.files.getURL(rec, rec.cover));
        await expect404(alice.files.getURL(rec, rec.cover, { thumb: '40x40' }));
        await expectThumb(alice.files.getURL(res, res.cover, { thumb: '40x40' }), 40, 40);
        upd = res;
    }

    step = 'a JSON update naming a file the record does not hold';
    {
        const err = await expectError(files.update(rec.id, { attachments: ['invented_0123456789.txt'] }), 400, {
            fields: { attachments: 'validation_invalid_file' },
        });
        t.equal(err.response.message, 'Failed to update record.');
        // another record's file is not on this record either
        await expectError(files.update(rec.id, { attachments: [plain.attachments[0]] }), 400, {
            fields: { attachments: 'validation_invalid_file' },
        });
        await expectError(files.update(rec.id, { cover: plain.cover }), 400, {
            fields: { cover: 'validation_invalid_file' },
        });
        t.deepEqual(await files.getOne(rec.id), upd, 'nothing changed');
        // the record's own current name is fine
        t.equal((await files.update(rec.id, { cover: upd.cover })).cover, upd.cover);
    }

    step = 'bob cannot update alice\'s record';
    {
        const form = new FormData();
        form.append('attachments+', new File(['bob'], 'bob.txt'));
        await expectError(bob.collection(COLLECTION).update(rec.id, form), 404);
        t.deepEqual((await files.getOne(rec.id)).attachments, []);
    }

    // ------------------------------------------------------------ protected files
    step = 'protected: no token, 404';
    const secretURL = alice.files.getURL(rec, rec.secret);
    await expect404(secretURL);
    await expect404(guest.files.getURL(rec, rec.secret));
    await expect404(alice.files.getURL(rec, rec.secret, { token: 'not-a-token' }));
    // an auth token is not a file token
    await expect404(alice.files.getURL(rec, rec.secret, { token: alice.authStore.token }));
    await expect404(alice.files.getURL(rec, rec.secret, { token: su.authStore.token }));

    step = 'protected: the file token of the owner';
    {
        await expectError(guest.files.getToken(), 401);
        const token = await alice.files.getToken();
        t.equal(typeof token, 'string');
        t.ok(token.length > 20);
        const url = alice.files.getURL(rec, rec.secret, { token });
        t.equal(url, `${secretURL}?token=${encodeURIComponent(token)}`);
        await expectBytes(url, enc(secretText), { inline: false });
        await expectBytes(alice.files.getURL(rec, rec.secret, { token, download: true }), enc(secretText), {
            inline: false,
        });
        // the file token opens protected files only of records the view rule lets alice see,
        // and it is not an auth token
        await expectError(
            alice.send('/api/files/token', { method: 'POST', headers: { Authorization: token } }), 401,
        );
    }

    step = 'protected: the auth token in the Authorization header';
    await expectBytes(secretURL, enc(secretText), { headers: { Authorization: alice.authStore.token } });
    await expect404(secretURL, { Authorization: bob.authStore.token });

    step = "protected: another user's token, 404";
    {
        const bobToken = await bob.files.getToken();
        t.equal(typeof bobToken, 'string');
        await expect404(bob.files.getURL(rec, rec.secret, { token: bobToken }));
        await expect404(bob.files.getURL(rec, rec.secret, { token: bobToken, thumb: '100x100' }));
    }

    step = 'protected: a superuser file token';
    {
        const suToken = await su.files.getToken();
        await expectBytes(su.files.getURL(rec, rec.secret, { token: suToken }), enc(secretText));
    }

    step = 'protected: a password change ends the file tokens';
    {
        const token = await alice.files.getToken();
        const url = alice.files.getURL(rec, rec.secret, { token });
        t.equal((await get(url)).status, 200);
        const newPassword = USER_PASSWORD + '-changed';
        await alice.collection('users').update(aliceRec.id, {
            oldPassword: USER_PASSWORD, password: newPassword, passwordConfirm: newPassword,
        });
        await expect404(url);
        await alice.collection('users').authWithPassword(ALICE_EMAIL, newPassword);
        const fresh = await alice.files.getToken();
        await expectBytes(alice.files.getURL(rec, rec.secret, { token: fresh }), enc(secretText));
    }

    // ------------------------------------------------------------ batch uploads
    step = 'batch: uploads in create and update';
    const batchWas = (await su.settings.getAll()).batch.enabled;
    await su.settings.update({ batch: { enabled: true } });
    try {
        const b = alice.createBatch();
        b.collection(COLLECTION).create({
            owner: aliceRec.id,
            cover: new File([COVER_PNG], 'batch cover.png'),
            attachments: [new File(['batch one'], 'one.txt'), new File(['batch two'], 'two.txt')],
        });
        b.collection(COLLECTION).update(plain.id, { 'attachments+': new File(['batch three'], 'three.txt') });
        const res = await b.send();
        t.deepEqual(res.map((r) => r.status), [200, 200]);
        const [made, grown] = res.map((r) => r.body);
        t.match(made.id, RECORD_ID);
        t.match(made.cover, stored('batch_cover', 'png'));
        t.equal(made.attachments.length, 2);
        t.match(made.attachments[0], stored('one', 'txt'));
        t.match(made.attachments[1], stored('two', 'txt'));
        t.equal(grown.attachments.length, 3);
        t.deepEqual(grown.attachments.slice(0, 2), plain.attachments);
        t.match(grown.attachments[2], stored('three', 'txt'));
        await expectThumb(alice.files.getURL(made, made.cover, { thumb: '0x20' }), 40, 20);
        await expectBytes(alice.files.getURL(made, made.attachments[1]), enc('batch two'));
        await expectBytes(alice.files.getURL(grown, grown.attachments[2]), enc('batch three'));

        step = 'batch: a failing request keeps no upload';
        const fail = alice.createBatch();
        fail.collection(COLLECTION).update(made.id, { 'attachments+': new File(['batch four'], 'four.txt') });
        fail.collection(COLLECTION).update(made.id, { attachments: ['invented_0123456789.txt'] });
        await expectError(fail.send(), 400);
        t.deepEqual((await files.getOne(made.id)).attachments, made.attachments, 'rolled back');
        await su.collection(COLLECTION).delete(made.id);
        await expect404(alice.files.getURL(made, made.cover));
    } finally {
        await su.settings.update({ batch: { enabled: batchWas } });
    }

    // ------------------------------------------------------------ delete
    step = 'deleting the record makes its files 404';
    {
        // deleteRule is null: superusers only
        await expectError(files.delete(rec.id), 403);
        const token = await alice.files.getToken();
        const urls = [
            alice.files.getURL(upd, upd.cover),
            alice.files.getURL(upd, upd.cover, { thumb: '40x40' }),
            alice.files.getURL(upd, upd.secret, { token }),
        ];
        for (const url of urls) t.equal((await get(url)).status, 200, `GET ${url} before the delete`);
        t.equal(await su.collection(COLLECTION).delete(rec.id), true);
        await expectError(files.getOne(rec.id), 404);
        for (const url of urls) await expect404(url);
    }

    // ------------------------------------------------------------ cleanup
    step = 'deleting the collection makes its files 404';
    {
        const url = alice.files.getURL(plain, plain.cover);
        t.equal((await get(url)).status, 200);
        t.equal(await su.collections.delete(COLLECTION), true);
        await expect404(url);
    }

    step = 'cleanup';
    t.equal(await su.collection('users').delete(aliceRec.id), true);
    t.equal(await su.collection('users').delete(bobRec.id), true);

    step = 'done';
    console.log(JSON.stringify({ ok: true, checks: checkCount() }));
}

run(main, () => step);
