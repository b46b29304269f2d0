// Real-client realtime test: drives a running server's `/api/realtime` (server-sent events)
// with the official `pocketbase` JS SDK, as a browser app would, with the `eventsource`
// package standing in for the browser's EventSource (Node 20 has none).
//
// Usage:
//   node sdk_realtime.mjs <baseURL> <superuserEmail> <superuserPassword>
// or set BASTION_URL, BASTION_SUPERUSER_EMAIL, BASTION_SUPERUSER_PASSWORD. Also:
//   BASTION_RT_RESTART=1  the runner restarts the server (same port, same data) when this
//                         script prints a line `RESTART`: the reconnect section runs. Without
//                         it that section is skipped.
//   BASTION_REALTIME_IDLE_TIMEOUT, BASTION_REALTIME_MAX_LIFETIME (seconds)
//                         the server was started with these short stream lifetimes: only the
//                         lifetime section runs (the stream is closed after that long without
//                         a message, and after the lifetime however busy; the SDK reconnects).
//
// Sections: rules and options (a `notes` collection whose owner rule applies to events, a
// public `board`, topic `*` with filter and expand, a record topic, another user's records,
// guests, fields), the wire (headers, PB_CONNECT, 404 / 403 of the subscription POST),
// unsubscribe (one topic, then all: the SDK closes the stream), reconnect (the server goes
// away and comes back; the SDK resubscribes with the same options).
//
// Events on one stream arrive in commit order, so "not delivered" is checked with a fence:
// a write to `board` that every stream under test also watches; once it arrives, anything
// written before it that was due has arrived too.
//
// On success the last stdout line is {"ok":true,"checks":N,"sections":[...]}. On the first
// failed check it prints `FAIL [step] ...` to stderr and exits 1.

import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import PocketBase from 'pocketbase';
import { checkCount, expectError, ignore404, run, t } from './harness.mjs';

globalThis.EventSource = EventSource;

const [baseURL, email, password] = [
    process.argv[2] || process.env.BASTION_URL,
    process.argv[3] || process.env.BASTION_SUPERUSER_EMAIL,
    process.argv[4] || process.env.BASTION_SUPERUSER_PASSWORD,
];
if (!baseURL || !email || !password) {
    console.error('usage: node sdk_realtime.mjs <baseURL> <superuserEmail> <superuserPassword>');
    process.exit(2);
}
const RESTART = process.env.BASTION_RT_RESTART === '1';
const IDLE = Number(process.env.BASTION_REALTIME_IDLE_TIMEOUT || 0);
const LIFETIME = Number(process.env.BASTION_REALTIME_MAX_LIFETIME || 0);

const RUN = Date.now().toString(36);
const USERS = '_pb_users_auth_';
const NOTES = 'notes';
const BOARD = 'board';
const PASSWORD = 'sdk-realtime-password-1';
const CLIENT_ID = /^[A-Za-z0-9]{40}$/;
const WAIT = 10000; // ms for an event that is due
const GRACE = 300; // ms after a fence on another stream

let step = 'init';
const sections = [];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function client() {
    const pb = new PocketBase(baseURL);
    pb.autoCancellation(false);
    return pb;
}

/** Waits until `check()` is truthy (polled every 10 ms), or fails with `what`. */
async function until(check, what, timeout = WAIT) {
    const deadline = Date.now() + timeout;
    for (;;) {
        const value = check();
        if (value) return value;
        if (Date.now() > deadline) assert.fail(`timed out after ${timeout} ms waiting for ${what}`);
        await sleep(10);
    }
}

/** The events one callback received: `{action, record}` as the SDK passes them. */
class Inbox {
    constructor(name) {
        this.name = name;
        this.events = [];
        this.cb = (e) => this.events.push(e);
    }

    /** A short form of each event, for deepEqual: "create:title". */
    get summary() {
        return this.events.map((e) => `${e.action}:${e.record?.title ?? e.record?.id}`);
    }

    /** The next `count` events after `from` (waits for them), as events. */
    async take(from, count = 1) {
        await until(() => this.events.length >= from + count,
            `${count} event(s) in ${this.name} (has ${JSON.stringify(this.summary)})`);
        return this.events.slice(from, from + count);
    }

    /** Waits for an event whose record has `title` and returns it. */
    async waitTitle(title) {
        return until(() => this.events.find((e) => e.record?.title === title),
            `"${title}" in ${this.name} (has ${JSON.stringify(this.summary)})`);
    }

    clear() {
        this.events = [];
    }
}

let fences = 0;
/** A board record written by `writer`; waits until every inbox in `boards` has it. */
async function fence(writer, boards) {
    const title = `fence-${RUN}-${++fences}`;
    await writer.collection(BOARD).create({ title });
    for (const inbox of boards) await inbox.waitTitle(title);
    return title;
}

/** The inbox's events that are not fences, as short strings. */
const notFences = (inbox) => inbox.summary.filter((s) => !s.includes(`fence-${RUN}-`));

// ---------------------------------------------------------------- setup

async function setup(su) {
    step = 'setup: collections';
    for (const name of [NOTES, BOARD]) await ignore404(su.collections.delete(name));
    const owner = 'owner = @request.auth.id';
    const notes = await su.collections.create({
        name: NOTES,
        type: 'base',
        listRule: owner,
        viewRule: owner,
        createRule: `@request.auth.id != "" && ${owner}`,
        updateRule: owner,
        deleteRule: owner,
        fields: [
            { name: 'title', type: 'text' },
            { name: 'owner', type: 'relation', collectionId: USERS, maxSelect: 1 },
            { name: 'created', type: 'autodate', onCreate: true },
            { name: 'updated', type: 'autodate', onCreate: true, onUpdate: true },
        ],
    });
    const board = await su.collections.create({
        name: BOARD,
        type: 'base',
        listRule: '',
        viewRule: '',
        createRule: '',
        fields: [
            { name: 'title', type: 'text' },
            { name: 'body', type: 'text' },
        ],
    });
    t.equal(notes.name, NOTES);

    step = 'setup: users';
    const users = {};
    for (const who of ['a', 'b']) {
        const address = `sdk-rt-${RUN}-${who}@example.com`;
        const record = await su.collection('users').create({
            email: address, password: PASSWORD, passwordConfirm: PASSWORD, name: `User ${who}`,
        });
        const pb = client();
        await pb.collection('users').authWithPassword(address, PASSWORD);
        t.equal(pb.authStore.record.id, record.id);
        users[who] = { record, pb };
    }
    return { notes, board, users };
}

async function cleanup(su, users) {
    step = 'cleanup';
    for (const name of [NOTES, BOARD]) await ignore404(su.collections.delete(name));
    for (const { record, pb } of Object.values(users)) {
        pb.realtime.unsubscribe();
        await ignore404(su.collection('users').delete(record.id));
    }
}

// ---------------------------------------------------------------- sections

/** Events under rules and options, then the wire, then unsubscribe. */
async function events(su, { notes, board, users }) {
    const { a, b } = users;
    const guest = client();

    step = 'subscribe: a notes/* (filter, expand), b notes/* (fields), guest notes/* and board';
    sections.push('events');
    const aAll = new Inbox('a notes/*');
    const aBoard = new Inbox('a board/*');
    const bAll = new Inbox('b notes/*');
    const bBoard = new Inbox('b board/*');
    const gNotes = new Inbox('guest notes/*');
    const gBoard = new Inbox('guest board/* (by id, fields)');
    await a.pb.collection(NOTES).subscribe('*', aAll.cb, { filter: 'title !~ "secret"', expand: 'owner' });
    await a.pb.collection(BOARD).subscribe('*', aBoard.cb);
    t.equal(a.pb.realtime.isConnected, true);
    t.match(a.pb.realtime.clientId, CLIENT_ID, 'clientId: 40 alphanumerics');
    await b.pb.collection(NOTES).subscribe('*', bAll.cb, { fields: 'id,title,owner' });
    await b.pb.collection(BOARD).subscribe('*', bBoard.cb);
    await guest.collection(NOTES).subscribe('*', gNotes.cb); // the list rule fails: nothing
    await guest.collection(board.id).subscribe('*', gBoard.cb, { fields: 'id,title' });
    t.notEqual(a.pb.realtime.clientId, b.pb.realtime.clientId, 'one client id per connection');
    await fence(su, [aBoard, bBoard, gBoard]);

    step = 'create: the owner receives it, with expand, the same as a view';
    const first = await a.pb.collection(NOTES).create({ title: 'first', owner: a.record.id });
    {
        const [e] = await aAll.take(0);
        t.equal(e.action, 'create');
        const viewed = await a.pb.collection(NOTES).getOne(first.id, { expand: 'owner' });
        t.deepEqual(e.record, viewed, 'the event record is what the owner views (expand applied)');
        t.equal(e.record.collectionName, NOTES);
        t.equal(e.record.collectionId, notes.id);
        t.equal(e.record.expand.owner.id, a.record.id);
        t.equal(e.record.expand.owner.email, a.record.email, 'the owner sees their own email');
    }

    step = 'record topic: a notes/<id>';
    const aOne = new Inbox('a notes/<first>');
    await a.pb.collection(NOTES).subscribe(first.id, aOne.cb);
    const bOther = new Inbox('b notes/<a\'s first>');
    await b.pb.collection(NOTES).subscribe(first.id, bOther.cb); // the view rule fails: nothing

    step = 'update: both topics of the owner';
    const renamed = await a.pb.collection(NOTES).update(first.id, { title: 'first renamed' });
    {
        const [e] = await aAll.take(1);
        t.equal(e.action, 'update');
        t.deepEqual(e.record, await a.pb.collection(NOTES).getOne(first.id, { expand: 'owner' }));
        const [one] = await aOne.take(0);
        t.equal(one.action, 'update');
        t.deepEqual(one.record, renamed, 'the record topic has no expand: the record as updated');
        t.equal(one.record.expand, undefined);
    }

    step = 'filter, other owners, guests: not delivered';
    await a.pb.collection(NOTES).create({ title: 'secret plan', owner: a.record.id }); // filtered out
    const bNote = await b.pb.collection(NOTES).create({ title: 'b note', owner: b.record.id });
    await su.collection(NOTES).create({ title: 'by root for b', owner: b.record.id });
    const forA = await su.collection(NOTES).create({ title: 'by root for a', owner: a.record.id });
    await fence(su, [aBoard, bBoard, gBoard]);
    await aAll.waitTitle('by root for a');
    t.deepEqual(notFences(aAll), ['create:first', 'update:first renamed', 'create:by root for a'],
        'a: its own notes only, the filter applied, whoever wrote them');
    t.deepEqual(aOne.summary, ['update:first renamed'], 'a: the record topic has one record');
    t.deepEqual(bAll.summary, ['create:b note', 'create:by root for b'], 'b: its own notes only');
    t.deepEqual(bAll.events[0].record, { id: bNote.id, title: 'b note', owner: b.record.id },
        'fields option: only id, title, owner');
    t.deepEqual(bOther.summary, [], 'b: nothing from a record of a');
    t.deepEqual(gNotes.summary, [], 'guest: nothing under an owner rule');
    t.equal(aAll.events[2].record.id, forA.id);
    t.equal(aAll.events[2].record.expand.owner.id, a.record.id, 'expand for a record written by root');

    step = 'public collection: every stream, fields applied';
    {
        const posted = await guest.collection(BOARD).create({ title: `hello-${RUN}`, body: 'body text' });
        for (const inbox of [aBoard, bBoard]) {
            const e = await inbox.waitTitle(`hello-${RUN}`);
            t.equal(e.action, 'create');
            t.deepEqual(e.record, posted);
        }
        const e = await gBoard.waitTitle(`hello-${RUN}`);
        t.deepEqual(e.record, { id: posted.id, title: `hello-${RUN}` }, 'fields option on a topic by collection id');
    }

    step = 'delete: both topics, the record as it was';
    {
        const before = await a.pb.collection(NOTES).getOne(first.id, { expand: 'owner' });
        const n = aAll.events.length;
        t.equal(await a.pb.collection(NOTES).delete(first.id), true);
        const [e] = await aAll.take(n);
        t.equal(e.action, 'delete');
        t.deepEqual(e.record, before, 'the deleted record, expanded');
        const [one] = await aOne.take(1);
        t.equal(one.action, 'delete');
        t.equal(one.record.id, first.id);
        t.equal(one.record.title, 'first renamed');
    }

    await wire(a, b, guest);

    step = 'unsubscribe one topic';
    sections.push('unsubscribe');
    const second = await a.pb.collection(NOTES).create({ title: 'second', owner: a.record.id });
    const aTwo = new Inbox('a notes/<second>');
    await a.pb.collection(NOTES).subscribe(second.id, aTwo.cb);
    await a.pb.collection(NOTES).update(second.id, { title: 'second v2' });
    await aTwo.waitTitle('second v2');
    await a.pb.collection(NOTES).unsubscribe(second.id);
    t.equal(a.pb.realtime.isConnected, true, 'other topics keep the stream');
    aAll.clear();
    aTwo.clear();
    await a.pb.collection(NOTES).update(second.id, { title: 'second v3' });
    await aAll.waitTitle('second v3');
    await fence(su, [aBoard]);
    t.deepEqual(aTwo.summary, [], 'the record topic is gone');
    t.deepEqual(notFences(aAll), ['update:second v3'], 'notes/* still delivers');

    step = 'unsubscribe all: the SDK closes the stream';
    await a.pb.realtime.unsubscribe();
    t.equal(a.pb.realtime.isConnected, false);
    t.equal(a.pb.realtime.clientId, '');
    aAll.clear();
    aBoard.clear();
    await a.pb.collection(NOTES).update(second.id, { title: 'second v4' });
    await fence(su, [bBoard, gBoard]);
    await sleep(GRACE);
    t.deepEqual(aAll.summary, [], 'no notes event after unsubscribe');
    t.deepEqual(aBoard.summary, [], 'no board event after unsubscribe');

    step = 'b unsubscribes its collection topics, guest everything';
    await b.pb.collection(NOTES).unsubscribe();
    t.equal(b.pb.realtime.isConnected, true, 'board/* remains');
    bAll.clear();
    await b.pb.collection(NOTES).create({ title: 'b after', owner: b.record.id });
    await fence(su, [bBoard]);
    t.deepEqual(bAll.summary, [], 'b: notes topics are gone');
    await b.pb.realtime.unsubscribe();
    await guest.realtime.unsubscribe();
    t.equal(b.pb.realtime.isConnected, false);
    t.equal(guest.realtime.isConnected, false);
}

/** What the SDK hides: the stream's headers and first message, the subscription POST. */
async function wire(a, b, guest) {
    step = 'wire: GET /api/realtime';
    sections.push('wire');
    const controller = new AbortController();
    const res = await fetch(`${baseURL}/api/realtime`, { signal: controller.signal });
    t.equal(res.status, 200);
    t.ok(res.headers.get('content-type').startsWith('text/event-stream'), res.headers.get('content-type'));
    t.equal(res.headers.get('cache-control'), 'no-store');
    const reader = res.body.getReader();
    let text = '';
    while (!text.includes('\n\n')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
    }
    controller.abort();
    const message = text.slice(0, text.indexOf('\n\n'));
    const lines = Object.fromEntries(message.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));
    t.match(lines.id, CLIENT_ID, `id line in ${JSON.stringify(message)}`);
    t.equal(lines.event, 'PB_CONNECT');
    t.deepEqual(JSON.parse(lines.data), { clientId: lines.id });

    step = 'wire: POST with an unknown client';
    await expectError(guest.send('/api/realtime', {
        method: 'POST', body: { clientId: 'x'.repeat(40), subscriptions: [] },
    }), 404, { message: 'Missing or invalid client id.' });
    await expectError(guest.send('/api/realtime', {
        method: 'POST', body: { clientId: '', subscriptions: [] },
    }), 400);

    step = 'wire: another user cannot take over a bound client';
    t.equal(a.pb.realtime.isConnected, true);
    const topics = [`${NOTES}/*`];
    await expectError(b.pb.send('/api/realtime', {
        method: 'POST', body: { clientId: a.pb.realtime.clientId, subscriptions: topics },
    }), 403, { message: "The current and the previous request authorization don't match." });
    await expectError(guest.send('/api/realtime', {
        method: 'POST', body: { clientId: a.pb.realtime.clientId, subscriptions: topics },
    }), 403);
}

/** The server goes away (the runner restarts it); the SDK reconnects and resubscribes. */
async function reconnect(su, { users }) {
    const { a } = users;
    step = 'reconnect: subscribe';
    sections.push('reconnect');
    const aAll = new Inbox('a notes/* (reconnect)');
    const aBoard = new Inbox('a board/* (reconnect)');
    const connects = [];
    const disconnects = [];
    a.pb.realtime.onDisconnect = (active) => disconnects.push(active);
    await a.pb.realtime.subscribe('PB_CONNECT', (e) => connects.push(e.clientId));
    await a.pb.collection(NOTES).subscribe('*', aAll.cb, { filter: 'title !~ "secret"', expand: 'owner' });
    await a.pb.collection(BOARD).subscribe('*', aBoard.cb);
    t.equal(connects.length, 1);
    t.equal(connects[0], a.pb.realtime.clientId);
    await a.pb.collection(NOTES).create({ title: 'before restart', owner: a.record.id });
    await aAll.waitTitle('before restart');

    step = 'reconnect: the server restarts';
    console.log('RESTART');
    await until(() => disconnects.length >= 1, 'the SDK to see the stream close', 60000);
    t.ok(disconnects[0].length >= 3, `onDisconnect with the active topics: ${JSON.stringify(disconnects[0])}`);
    await until(() => connects.length >= 2, 'a new PB_CONNECT after the restart', 60000);
    t.notEqual(connects[1], connects[0], 'a new client id');
    t.equal(a.pb.realtime.clientId, connects[1]);
    t.equal(a.pb.realtime.isConnected, true);

    step = 'reconnect: resubscribed, with the same options';
    aAll.clear();
    const after = await a.pb.collection(NOTES).create({ title: 'after restart', owner: a.record.id });
    await a.pb.collection(NOTES).create({ title: 'secret after restart', owner: a.record.id });
    await fence(su, [aBoard]);
    const e = await aAll.waitTitle('after restart');
    t.equal(e.action, 'create');
    t.equal(e.record.id, after.id);
    t.equal(e.record.expand.owner.id, a.record.id, 'expand survives the reconnect');
    t.deepEqual(notFences(aAll), ['create:after restart'], 'the filter survives the reconnect');
    a.pb.realtime.onDisconnect = undefined;
    await a.pb.realtime.unsubscribe();
}

/** Short server-side lifetimes: an idle stream is closed, and a busy one at its lifetime. */
async function lifetime(su, { users }) {
    const { a } = users;
    sections.push('lifetime');
    const connects = [];
    const disconnects = [];
    const aBoard = new Inbox('a board/* (lifetime)');
    step = 'lifetime: subscribe';
    a.pb.realtime.onDisconnect = (active) => disconnects.push({ at: Date.now(), active });
    await a.pb.realtime.subscribe('PB_CONNECT', (e) => connects.push({ at: Date.now(), id: e.clientId }));
    await a.pb.collection(BOARD).subscribe('*', aBoard.cb);

    step = `lifetime: idle for ${IDLE} s`;
    await until(() => disconnects.length >= 1, 'the idle stream to be closed', (IDLE + 10) * 1000);
    const idleFor = (disconnects[0].at - connects[0].at) / 1000;
    t.ok(idleFor >= IDLE - 0.5 && idleFor <= IDLE + 3, `closed after ${idleFor} s idle (timeout ${IDLE} s)`);
    await until(() => connects.length >= 2, 'the SDK to reconnect', 15000);
    t.notEqual(connects[1].id, connects[0].id);
    const back = await fence(su, [aBoard]);
    t.ok(back, 'events after the reconnect');

    step = `lifetime: busy for ${LIFETIME} s`;
    const start = connects[1].at;
    let n = 0;
    while (disconnects.length < 2 && Date.now() - start < (LIFETIME + 10) * 1000) {
        await su.collection(BOARD).create({ title: `busy-${RUN}-${++n}` });
        await sleep(Math.min(IDLE * 1000 / 4, 500));
    }
    t.equal(disconnects.length, 2, 'closed while busy');
    const lived = (disconnects[1].at - start) / 1000;
    t.ok(lived >= LIFETIME - 0.5 && lived <= LIFETIME + 3, `closed after ${lived} s (lifetime ${LIFETIME} s)`);
    t.ok(aBoard.events.length >= n / 2, `events kept flowing while busy (${aBoard.events.length} of ${n})`);
    await until(() => connects.length >= 3, 'the SDK to reconnect again', 15000);
    await fence(su, [aBoard]);
    a.pb.realtime.onDisconnect = undefined;
    await a.pb.realtime.unsubscribe();
}

// ---------------------------------------------------------------- main

async function main() {
    const su = client();
    step = 'superuser authWithPassword';
    await su.collection('_superusers').authWithPassword(email, password);
    const ctx = await setup(su);
    if (IDLE || LIFETIME) {
        assert.ok(IDLE > 0 && LIFETIME > IDLE, 'the lifetime section needs 0 < idle timeout < max lifetime');
        await lifetime(su, ctx);
    } else {
        await events(su, ctx);
        if (RESTART) await reconnect(su, ctx);
    }
    await cleanup(su, ctx.users);
    console.log(JSON.stringify({ ok: true, checks: checkCount(), sections }));
}

run(main, () => step);
