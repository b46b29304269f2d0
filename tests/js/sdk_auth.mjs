// Real-client auth test: drives a running Bastion server with the official `pocketbase` JS
// SDK through every sign-in flow: authWithPassword / authRefresh, email verification,
// password reset, email change, one-time passwords, MFA (password + OTP both ways),
// impersonation, and the OAuth2 code flow against a real OpenID provider.
//
// Usage:
//   node sdk_auth.mjs <baseURL> <superuserEmail> <superuserPassword>
// or set BASTION_URL, BASTION_SUPERUSER_EMAIL, BASTION_SUPERUSER_PASSWORD. Also:
//   BASTION_MAILDIR     folder where the test SMTP server drops one JSON file per message,
//                       named so that they sort in arrival order:
//                       {"to", "rcptTos", "mailFrom", "from", "subject", "html", "text"}
//   BASTION_SMTP_HOST   that SMTP server (default 127.0.0.1)
//   BASTION_SMTP_PORT
//   BASTION_OIDC_ISSUER, BASTION_OIDC_CLIENT_ID, BASTION_OIDC_CLIENT_SECRET,
//   BASTION_OIDC_REDIRECT
//                       a node-oidc-provider with its development login page (any login
//                       name signs in as <login>@example.com, verified) and a confidential
//                       client with that redirect URI. Without BASTION_OIDC_ISSUER the OAuth2
//                       section is skipped (the summary lists the sections that ran).
//
// The script configures SMTP through the settings API and restores what it changed. It plays
// the browser for OAuth2 itself (fetch with a cookie jar, stopping at the redirect URI).
//
// On success the last stdout line is {"ok":true,"checks":N,"sections":[...],"mails":M} (M =
// the messages read, each one checked and expected). On the first
// failed check it prints `FAIL [step] ...` (plus the server response for SDK errors) to
// stderr and exits 1.

import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import PocketBase, { ClientResponseError, getTokenPayload } from 'pocketbase';
import { browse, checkCount, expectError, run, t } from './harness.mjs';

const [baseURL, email, password] = [
    process.argv[2] || process.env.BASTION_URL,
    process.argv[3] || process.env.BASTION_SUPERUSER_EMAIL,
    process.argv[4] || process.env.BASTION_SUPERUSER_PASSWORD,
];
const MAILDIR = process.env.BASTION_MAILDIR;
const SMTP_HOST = process.env.BASTION_SMTP_HOST || '127.0.0.1';
const SMTP_PORT = Number(process.env.BASTION_SMTP_PORT);
const OIDC = process.env.BASTION_OIDC_ISSUER
    ? {
        issuer: process.env.BASTION_OIDC_ISSUER,
        clientId: process.env.BASTION_OIDC_CLIENT_ID,
        clientSecret: process.env.BASTION_OIDC_CLIENT_SECRET,
        redirectURL: process.env.BASTION_OIDC_REDIRECT,
    }
    : null;
if (!baseURL || !email || !password || !MAILDIR || !SMTP_PORT) {
    console.error('usage: BASTION_MAILDIR=<dir> BASTION_SMTP_PORT=<port> '
        + 'node sdk_auth.mjs <baseURL> <superuserEmail> <superuserPassword>');
    process.exit(2);
}
if (OIDC && (!OIDC.clientId || !OIDC.clientSecret || !OIDC.redirectURL)) {
    console.error('BASTION_OIDC_ISSUER needs BASTION_OIDC_CLIENT_ID, _CLIENT_SECRET and _REDIRECT');
    process.exit(2);
}

const RUN = Date.now().toString(36);
const APP_NAME = 'SDK Auth Test';
const APP_URL = 'http://app.example.test';
const SENDER = 'noreply@example.test';
const USER_A = `sdk-auth-${RUN}-a@example.com`;
const USER_A2 = `sdk-auth-${RUN}-a2@example.com`;
const USER_B = `sdk-auth-${RUN}-b@example.com`;
const GHOST = `sdk-auth-${RUN}-ghost@example.com`;
const OAUTH_LOGIN = `sdk-oauth-${RUN}`;
const OAUTH_LOGIN2 = `sdk-oauth2-${RUN}`;
const PW_A = 'sdk-auth-password-a1';
const PW_A_NEW = 'sdk-auth-password-a2';
const PW_B = 'sdk-auth-password-b1';
const RECORD_ID = /^[a-z0-9]{15}$/;
const JWT = /^[\w-]+\.[\w-]+\.[\w-]+$/;
const USERS_COLLECTION_ID = '_pb_users_auth_';

let step = 'init';
const sections = [];


/** Like expectError, and checks `data[field].code` of a 400 validation error. */
async function expectFieldError(promise, field, code) {
    const err = await expectError(promise, 400);
    t.equal(err.response.data?.[field]?.code, code,
        `data.${field}.code (response: ${JSON.stringify(err.response)})`);
    return err;
}

function client() {
    const pb = new PocketBase(baseURL);
    pb.autoCancellation(false);
    return pb;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowSeconds = () => Math.floor(Date.now() / 1000);

// ---------------------------------------------------------------- the mailbox

const inbox = {
    seen: new Set(), // file names already read
    pending: [], // messages read but not yet consumed by a check, in arrival order

    async poll() {
        const names = (await readdir(MAILDIR)).filter((n) => n.endsWith('.json')).sort();
        for (const name of names) {
            if (this.seen.has(name)) continue;
            this.seen.add(name);
            const message = JSON.parse(await readFile(path.join(MAILDIR, name), 'utf8'));
            this.pending.push({ ...message, file: name });
        }
    },

    /** The next message sent to `to` (waits for it up to `timeout` ms), removed from pending. */
    async next(to, { timeout = 10000 } = {}) {
        const deadline = Date.now() + timeout;
        for (;;) {
            await this.poll();
            const i = this.pending.findIndex((m) => m.rcptTos.includes(to));
            if (i >= 0) return this.pending.splice(i, 1)[0];
            if (Date.now() > deadline) {
                const others = this.pending.map((m) => `${m.rcptTos} "${m.subject}"`);
                assert.fail(`no email to ${to} after ${timeout} ms (pending: ${JSON.stringify(others)})`);
            }
            await sleep(25);
        }
    },

    /** Asserts that nothing arrived that no check consumed (after a short grace period). */
    async expectNone(why, grace = 250) {
        await sleep(grace);
        await this.poll();
        t.deepEqual(this.pending.map((m) => `${m.rcptTos} "${m.subject}"`), [], `no email: ${why}`);
    },
};

/** Checks the envelope and headers every message shares; returns its HTML body. */
function checkMessage(message, to, subjectPart) {
    t.deepEqual(message.rcptTos, [to], 'envelope recipient');
    t.equal(message.to, to, 'To header');
    t.equal(message.mailFrom, SENDER, 'envelope sender');
    t.ok(message.from.includes(SENDER), `From header ${message.from}`);
    t.ok(message.subject.includes(subjectPart), `subject "${message.subject}" has "${subjectPart}"`);
    t.ok(message.html.length > 0, 'an HTML body');
    return message.html;
}

/** The token of `{APP_URL}/_/#/auth/<action>/{TOKEN}` in an HTML body. */
function tokenFrom(html, action) {
    const prefix = `${APP_URL}/_/#/auth/${action}/`;
    const at = html.indexOf(prefix);
    t.ok(at >= 0, `link ${prefix}… in ${html}`);
    const token = html.slice(at + prefix.length).match(/^[\w-]+\.[\w-]+\.[\w-]+/)?.[0];
    t.match(token ?? '', JWT, 'a JWT in the link');
    return token;
}

function otpFrom(html, length) {
    const code = html.match(/<strong>(\d+)<\/strong>/)?.[1];
    t.ok(code, `an OTP in ${html}`);
    t.equal(code.length, length, 'otp.length digits');
    return code;
}

// ---------------------------------------------------------------- the browser (OAuth2)


/** auth-methods through the SDK, then the browser: the provider entry and the code. */
async function oauth2Code(pb, login) {
    const methods = await pb.collection('users').listAuthMethods();
    t.equal(methods.oauth2.enabled, true);
    const provider = methods.oauth2.providers.find((p) => p.name === 'oidc');
    t.ok(provider, `oidc in ${JSON.stringify(methods.oauth2.providers)}`);
    const params = new URL(await browse(provider.authURL + encodeURIComponent(OIDC.redirectURL), login,
        OIDC.redirectURL)).searchParams;
    t.equal(params.get('state'), provider.state, 'the state comes back unchanged');
    t.ok(params.get('code'), `a code in ${params}`);
    return { provider, code: params.get('code') };
}

// ---------------------------------------------------------------- main

async function main() {
    const pb = client(); // the superuser
    const guest = client();

    step = 'superuser authWithPassword';
    await pb.collection('_superusers').authWithPassword(email, password);
    t.equal(pb.authStore.isSuperuser, true);

    step = 'settings: SMTP and meta';
    const before = await pb.settings.getAll();
    {
        const settings = await pb.settings.update({
            meta: { appName: APP_NAME, appURL: APP_URL, senderName: 'Bastion SDK', senderAddress: SENDER },
            smtp: { enabled: true, host: SMTP_HOST, port: SMTP_PORT, tls: false, username: '', password: '' },
        });
        t.equal(settings.smtp.enabled, true);
        t.equal(settings.smtp.host, SMTP_HOST);
        t.equal(settings.smtp.port, SMTP_PORT);
        t.equal('password' in settings.smtp, false, 'smtp.password is write-only');
        t.equal(settings.meta.appURL, APP_URL);
        t.equal(settings.meta.senderAddress, SENDER);
    }
    await inbox.expectNone('before the flows', 0);

    step = 'users collection defaults';
    const usersColl = await pb.collections.getOne('users');
    const AUTH_DURATION = usersColl.authToken.duration;
    t.ok(AUTH_DURATION >= 10, `authToken.duration ${AUTH_DURATION}`);
    t.equal('secret' in usersColl.authToken, false, 'token secrets are write-only');
    t.equal(usersColl.otp.enabled, false);
    t.equal(usersColl.mfa.enabled, false);
    t.equal(usersColl.oauth2.enabled, false);

    // ------------------------------------------------------ password + refresh
    step = 'sign up + authWithPassword';
    sections.push('password');
    const users = pb.collection('users');
    const a = await guest.collection('users').create({
        email: USER_A, password: PW_A, passwordConfirm: PW_A, name: 'User A',
    });
    t.match(a.id, RECORD_ID);
    t.equal(a.verified, false);
    const b = await guest.collection('users').create({
        email: USER_B, password: PW_B, passwordConfirm: PW_B, name: 'User B',
    });
    {
        const methods = await guest.collection('users').listAuthMethods();
        t.deepEqual(methods.password, { enabled: true, identityFields: ['email'] });
        t.deepEqual(methods.otp, { enabled: false, duration: 0 });
        t.deepEqual(methods.mfa, { enabled: false, duration: 0 });
        t.deepEqual(methods.oauth2, { enabled: false, providers: [] });
    }
    const userA = client();
    {
        const auth = await userA.collection('users').authWithPassword(USER_A, PW_A);
        t.match(auth.token, JWT);
        t.equal(auth.record.id, a.id);
        t.equal(auth.record.email, USER_A, 'the auth response always carries the email');
        t.equal(auth.record.collectionName, 'users');
        t.equal(userA.authStore.token, auth.token);
        t.equal(userA.authStore.record.id, a.id);
        t.equal(userA.authStore.isValid, true);
        t.equal(userA.authStore.isSuperuser, false);
        const claims = getTokenPayload(auth.token);
        t.equal(claims.type, 'auth');
        t.equal(claims.id, a.id);
        t.equal(claims.collectionId, USERS_COLLECTION_ID);
        t.equal(claims.refreshable, true);
        t.ok(Math.abs(claims.exp - (nowSeconds() + AUTH_DURATION)) < 60, `exp ${claims.exp} = now + authToken.duration`);
        // identity lookup ignores the email's case
        const upper = await client().collection('users').authWithPassword(USER_A.toUpperCase(), PW_A);
        t.equal(upper.record.id, a.id);
        await expectError(client().collection('users').authWithPassword(USER_A, 'wrong-password-1'), 400,
            { message: 'Failed to authenticate.' });
        await expectError(client().collection('users').authWithPassword(GHOST, PW_A), 400,
            { message: 'Failed to authenticate.' });
    }

    step = 'authRefresh';
    {
        const oldClaims = getTokenPayload(userA.authStore.token);
        await sleep(1100); // a later second: a later exp, so a different token
        const refreshed = await userA.collection('users').authRefresh();
        t.match(refreshed.token, JWT);
        t.equal(refreshed.record.id, a.id);
        t.equal(refreshed.record.name, 'User A');
        t.equal(userA.authStore.token, refreshed.token, 'the SDK stores the new token');
        t.ok(getTokenPayload(refreshed.token).exp > oldClaims.exp, 'the new token expires later');
        await expectError(guest.collection('users').authRefresh(), 401,
            { message: 'The request requires valid record authorization token.' });
        await expectError(pb.collection('users').authRefresh(), 403,
            { message: 'The request requires auth record from _superusers collection.' });
    }

    // ------------------------------------------------------------ verification
    step = 'requestVerification / confirmVerification';
    sections.push('verification');
    {
        t.equal(await guest.collection('users').requestVerification(USER_A), true);
        const html = checkMessage(await inbox.next(USER_A), USER_A, APP_NAME);
        const token = tokenFrom(html, 'confirm-verification');
        const claims = getTokenPayload(token);
        t.equal(claims.type, 'verification');
        t.equal(claims.id, a.id);
        t.equal(claims.email, USER_A);
        t.equal(claims.collectionId, USERS_COLLECTION_ID);
        t.equal(await guest.collection('users').requestVerification(GHOST), true, 'unknown email: 204 too');
        await inbox.expectNone('unknown email');

        await expectFieldError(guest.collection('users').confirmVerification('x.y.z'), 'token',
            'validation_invalid_token');
        await expectFieldError(guest.collection('_superusers').confirmVerification(token), 'token',
            'validation_token_collection_mismatch');
        t.equal(userA.authStore.record.verified, false);
        t.equal(await userA.collection('users').confirmVerification(token), true);
        t.equal(userA.authStore.record.verified, true, 'the SDK marks its own record verified');
        t.equal((await users.getOne(a.id)).verified, true, 'verified on the server');
        t.equal(await guest.collection('users').requestVerification(USER_A), true);
        await inbox.expectNone('already verified');
        await expectError(guest.collection('_superusers').requestVerification(email), 400,
            { message: 'All superusers are verified by default.' });
    }

    // ---------------------------------------------------------- password reset
    step = 'requestPasswordReset / confirmPasswordReset';
    sections.push('passwordReset');
    {
        const oldToken = userA.authStore.token;
        t.equal(await guest.collection('users').requestPasswordReset(USER_A), true);
        const html = checkMessage(await inbox.next(USER_A), USER_A, APP_NAME);
        const token = tokenFrom(html, 'confirm-password-reset');
        const claims = getTokenPayload(token);
        t.equal(claims.type, 'passwordReset');
        t.equal(claims.id, a.id);
        t.equal(claims.email, USER_A);
        t.equal(await guest.collection('users').requestPasswordReset(USER_A), true);
        await inbox.expectNone('a second reset within the cooldown');
        t.equal(await guest.collection('users').requestPasswordReset(GHOST), true);
        await inbox.expectNone('unknown email');

        await expectFieldError(
            guest.collection('users').confirmPasswordReset(token, PW_A_NEW, 'something-else-1'),
            'passwordConfirm', 'validation_values_mismatch');
        await expectFieldError(guest.collection('users').confirmPasswordReset(token, 'short', 'short'),
            'password', 'validation_min_text_constraint');
        t.equal(await guest.collection('users').confirmPasswordReset(token, PW_A_NEW, PW_A_NEW), true);
        await expectFieldError(guest.collection('users').confirmPasswordReset(token, 'another-pass-1',
            'another-pass-1'), 'token', 'validation_invalid_token');

        await expectError(client().collection('users').authWithPassword(USER_A, PW_A), 400,
            { message: 'Failed to authenticate.' });
        // the session from before the reset is over
        await expectError(userA.collection('users').authRefresh(), 401);
        t.equal(userA.authStore.token, oldToken, 'the SDK keeps the dead token (no auto-clear)');
        const auth = await userA.collection('users').authWithPassword(USER_A, PW_A_NEW);
        t.equal(auth.record.id, a.id);
        t.notEqual(auth.token, oldToken);
        t.equal((await userA.collection('users').authRefresh()).record.id, a.id, 'the new session refreshes');
    }

    // ------------------------------------------------------------ email change
    step = 'requestEmailChange / confirmEmailChange';
    sections.push('emailChange');
    {
        await expectError(guest.collection('users').requestEmailChange(USER_A2), 401);
        await expectFieldError(userA.collection('users').requestEmailChange(USER_B), 'newEmail',
            'validation_invalid_new_email');
        await expectFieldError(userA.collection('users').requestEmailChange(USER_A), 'newEmail',
            'validation_invalid_new_email');
        await inbox.expectNone('refused email changes');
        t.equal(await userA.collection('users').requestEmailChange(USER_A2), true);
        const html = checkMessage(await inbox.next(USER_A2), USER_A2, APP_NAME);
        const token = tokenFrom(html, 'confirm-email-change');
        const claims = getTokenPayload(token);
        t.equal(claims.type, 'emailChange');
        t.equal(claims.id, a.id);
        t.equal(claims.email, USER_A);
        t.equal(claims.newEmail, USER_A2);

        await expectFieldError(userA.collection('users').confirmEmailChange(token, PW_A), 'password',
            'validation_invalid_password');
        t.equal(userA.authStore.isValid, true);
        t.equal(await userA.collection('users').confirmEmailChange(token, PW_A_NEW), true);
        t.equal(userA.authStore.token, '', 'the SDK signs its own record out after the change');
        t.equal(userA.authStore.isValid, false);
        await expectFieldError(guest.collection('users').confirmEmailChange(token, PW_A_NEW), 'token',
            'validation_invalid_token');

        const changed = await users.getOne(a.id);
        t.equal(changed.email, USER_A2);
        t.equal(changed.verified, true);
        await expectError(client().collection('users').authWithPassword(USER_A, PW_A_NEW), 400);
        const auth = await userA.collection('users').authWithPassword(USER_A2, PW_A_NEW);
        t.equal(auth.record.id, a.id);
        t.equal(auth.record.email, USER_A2);
    }

    // --------------------------------------------------------------------- OTP
    step = 'OTP disabled';
    sections.push('otp');
    await expectError(guest.collection('users').requestOTP(USER_B), 403,
        { message: 'The collection is not configured to allow OTP authentication.' });
    step = 'MFA needs two methods';
    {
        const err = await expectError(pb.collections.update('users', { mfa: { enabled: true } }), 400);
        t.equal(err.response.data?.mfa?.enabled?.code, 'validation_mfa_not_enough_auths',
            JSON.stringify(err.response));
    }

    step = 'collections.update users otp.enabled';
    let otpLength;
    {
        const coll = await pb.collections.update('users', { otp: { enabled: true } });
        t.equal(coll.otp.enabled, true);
        t.equal(coll.otp.duration, 180, 'the other otp options are kept');
        otpLength = coll.otp.length;
        t.ok(otpLength >= 4, `otp.length ${otpLength}`);
        t.equal(coll.mfa.enabled, false);
        const methods = await guest.collection('users').listAuthMethods();
        t.deepEqual(methods.otp, { enabled: true, duration: 180 });
    }

    step = 'requestOTP / authWithOTP';
    {
        const { otpId } = await guest.collection('users').requestOTP(USER_B);
        t.match(otpId, RECORD_ID);
        const html = checkMessage(await inbox.next(USER_B), USER_B, APP_NAME);
        const code = otpFrom(html, otpLength);
        const wrong = code === '0'.repeat(otpLength) ? '1'.repeat(otpLength) : '0'.repeat(otpLength);
        const userB = client();
        await expectError(userB.collection('users').authWithOTP(otpId, wrong), 400,
            { message: 'Invalid or expired OTP.' });
        t.equal(userB.authStore.isValid, false);
        t.equal((await users.getOne(b.id)).verified, false);
        const auth = await userB.collection('users').authWithOTP(otpId, code);
        t.equal(auth.record.id, b.id);
        t.equal(auth.record.email, USER_B);
        t.equal(auth.record.verified, true, 'a first OTP sign-in verifies the email it was sent to');
        t.equal(userB.authStore.record.id, b.id);
        t.equal(getTokenPayload(userB.authStore.token).refreshable, true);
        t.equal((await userB.collection('users').authRefresh()).record.id, b.id);
        await expectError(client().collection('users').authWithOTP(otpId, code), 400,
            { message: 'Invalid or expired OTP.' });

        const ghost = await guest.collection('users').requestOTP(GHOST);
        t.match(ghost.otpId, RECORD_ID, 'an unknown email gets an otpId too');
        await inbox.expectNone('unknown email');
        await expectError(guest.collection('users').authWithOTP(ghost.otpId, code), 400,
            { message: 'Invalid or expired OTP.' });
        await expectError(guest.collection('_superusers').requestOTP(email), 403);
    }

    // --------------------------------------------------------------------- MFA
    step = 'collections.update users mfa.enabled';
    sections.push('mfa');
    {
        const coll = await pb.collections.update('users', { mfa: { enabled: true } });
        t.equal(coll.mfa.enabled, true);
        t.equal(coll.mfa.rule, '');
        const methods = await guest.collection('users').listAuthMethods();
        t.equal(methods.mfa.enabled, true);
        t.ok(methods.mfa.duration > 0, `mfa.duration ${methods.mfa.duration}`);
    }

    step = 'MFA: password, then OTP';
    {
        const c = client();
        const err = await expectError(c.collection('users').authWithPassword(USER_A2, PW_A_NEW), 401);
        const mfaId = err.response.mfaId;
        t.match(mfaId ?? '', RECORD_ID, `err.response.mfaId in ${JSON.stringify(err.response)}`);
        t.deepEqual(Object.keys(err.response), ['mfaId'], 'a bare {mfaId}, not the error shape');
        t.equal(c.authStore.isValid, false, 'nothing stored after the first factor');
        // the SDK sends unknown options as query parameters: ?mfaId=
        await expectError(c.collection('users').authWithPassword(USER_A2, PW_A_NEW, { mfaId }), 400,
            { message: 'A different authentication method is required.' });
        const { otpId } = await c.collection('users').requestOTP(USER_A2);
        const code = otpFrom(checkMessage(await inbox.next(USER_A2), USER_A2, APP_NAME), otpLength);
        const auth = await c.collection('users').authWithOTP(otpId, code, { mfaId });
        t.equal(auth.record.id, a.id);
        t.equal(c.authStore.record.id, a.id);
        t.equal(c.authStore.isValid, true);
        t.equal((await c.collection('users').authRefresh()).record.id, a.id, 'no MFA on refresh');
        // the MFA session is spent
        const again = await c.collection('users').requestOTP(USER_A2);
        const code2 = otpFrom(checkMessage(await inbox.next(USER_A2), USER_A2, APP_NAME), otpLength);
        await expectError(client().collection('users').authWithOTP(again.otpId, code2, { mfaId }), 400,
            { message: 'Invalid or expired MFA session.' });
    }

    step = 'MFA: OTP, then password';
    {
        const c = client();
        const { otpId } = await c.collection('users').requestOTP(USER_A2);
        const code = otpFrom(checkMessage(await inbox.next(USER_A2), USER_A2, APP_NAME), otpLength);
        const err = await expectError(c.collection('users').authWithOTP(otpId, code), 401);
        const mfaId = err.response.mfaId;
        t.match(mfaId ?? '', RECORD_ID);
        await expectError(c.collection('users').authWithPassword(USER_A2, 'wrong-password-1', { mfaId }), 400,
            { message: 'Failed to authenticate.' });
        const auth = await c.collection('users').authWithPassword(USER_A2, PW_A_NEW, { mfaId });
        t.equal(auth.record.id, a.id);
        t.equal(c.authStore.record.id, a.id);
        await expectError(client().collection('users').authWithPassword(USER_A2, PW_A_NEW, { mfaId }), 400,
            { message: 'Invalid or expired MFA session.' });
    }

    step = 'MFA off again';
    {
        const coll = await pb.collections.update('users', { mfa: { enabled: false } });
        t.equal(coll.mfa.enabled, false);
        const auth = await client().collection('users').authWithPassword(USER_A2, PW_A_NEW);
        t.equal(auth.record.id, a.id, 'a password alone signs in again');
    }

    // ------------------------------------------------------------- impersonate
    step = 'impersonate';
    sections.push('impersonate');
    {
        const imp = await pb.collection('users').impersonate(a.id, 3600);
        t.ok(imp instanceof PocketBase, 'impersonate returns a new client');
        t.notEqual(imp, pb);
        t.equal(imp.baseURL, pb.baseURL);
        t.equal(imp.authStore.record.id, a.id);
        t.equal(imp.authStore.record.email, USER_A2);
        t.equal(imp.authStore.isValid, true);
        t.equal(imp.authStore.isSuperuser, false);
        t.equal(pb.authStore.isSuperuser, true, 'the superuser client is untouched');
        const token = imp.authStore.token;
        const claims = getTokenPayload(token);
        t.equal(claims.type, 'auth');
        t.equal(claims.id, a.id);
        t.equal(claims.refreshable, false, 'an impersonation token is not refreshable');
        t.ok(Math.abs(claims.exp - (nowSeconds() + 3600)) < 60, `exp ${claims.exp} = now + 3600`);

        await sleep(1100);
        const refreshed = await imp.collection('users').authRefresh();
        t.equal(refreshed.token, token, 'auth-refresh returns the same token');
        t.equal(refreshed.record.id, a.id);
        t.equal(imp.authStore.token, token);
        // it acts as the user: the owner rules let it read its own record, not another's
        t.equal((await imp.collection('users').getOne(a.id)).email, USER_A2);
        await expectError(imp.collection('users').getOne(b.id), 404);
        await expectError(imp.collection('users').impersonate(b.id, 60), 403);
        await expectError(guest.collection('users').impersonate(a.id, 60), 401);
        await expectError(pb.collection('users').impersonate('nosuchrecord000', 60), 404);

        const defaults = await pb.collection('users').impersonate(b.id, 0);
        const exp = getTokenPayload(defaults.authStore.token).exp;
        t.ok(Math.abs(exp - (nowSeconds() + AUTH_DURATION)) < 60, 'duration 0: the authToken duration');
        t.equal(defaults.authStore.record.id, b.id);
    }

    // ------------------------------------------------------------------ OAuth2
    let oauthUser; // the record the provider's account signed up as
    if (OIDC) {
        step = 'collections.update users oauth2';
        sections.push('oauth2');
        {
            const coll = await pb.collections.update('users', {
                oauth2: {
                    enabled: true,
                    providers: [{
                        name: 'oidc', displayName: 'Test IdP', clientId: OIDC.clientId,
                        clientSecret: OIDC.clientSecret, extra: { issuer: OIDC.issuer },
                    }],
                },
            });
            t.equal(coll.oauth2.enabled, true);
            t.equal(coll.oauth2.providers.length, 1);
            t.equal(coll.oauth2.providers[0].clientId, OIDC.clientId);
            t.equal('clientSecret' in coll.oauth2.providers[0], false, 'clientSecret is write-only');
        }

        step = 'listAuthMethods with a provider';
        {
            const methods = await guest.collection('users').listAuthMethods();
            const [provider] = methods.oauth2.providers;
            t.equal(provider.name, 'oidc');
            t.equal(provider.displayName, 'Test IdP');
            t.equal(provider.state.length, 30);
            t.equal(provider.codeVerifier.length, 43);
            t.equal(provider.codeChallengeMethod, 'S256');
            t.ok(provider.authURL.startsWith(`${OIDC.issuer}/auth?`), provider.authURL);
            t.ok(provider.authURL.endsWith('&redirect_uri='), provider.authURL);
        }

        step = 'authWithOAuth2Code: sign-up';
        {
            const c = client();
            const { provider, code } = await oauth2Code(c, OAUTH_LOGIN);
            const auth = await c.collection('users').authWithOAuth2Code(
                provider.name, code, provider.codeVerifier, OIDC.redirectURL);
            oauthUser = auth.record;
            t.match(auth.token, JWT);
            t.match(auth.record.id, RECORD_ID);
            t.equal(auth.record.email, `${OAUTH_LOGIN}@example.com`);
            t.equal(auth.record.verified, true, 'the provider verified the email');
            t.equal(auth.record.name, `Test ${OAUTH_LOGIN}`, 'mappedFields.name');
            t.equal(auth.meta.isNew, true);
            t.equal(auth.meta.id, OAUTH_LOGIN);
            t.equal(auth.meta.email, `${OAUTH_LOGIN}@example.com`);
            t.equal(auth.meta.username, OAUTH_LOGIN);
            t.equal(auth.meta.name, `Test ${OAUTH_LOGIN}`);
            t.equal(auth.meta.avatarURL, `https://avatars.example.com/${OAUTH_LOGIN}.png`);
            t.equal(auth.meta.avatarUrl, auth.meta.avatarURL, 'the legacy avatarUrl key');
            t.match(auth.meta.expiry, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z$/);
            t.ok(auth.meta.accessToken, 'meta.accessToken');
            t.equal(auth.meta.rawUser.sub, OAUTH_LOGIN);
            t.equal(auth.meta.rawUser.iss, OIDC.issuer);
            t.equal(c.authStore.record.id, auth.record.id, 'the SDK stores the session');
            t.equal(c.authStore.isValid, true);
            t.equal((await c.collection('users').authRefresh()).record.id, auth.record.id);

            step = 'listExternalAuths / replayed code';
            const links = await c.collection('users').listExternalAuths(auth.record.id);
            t.equal(links.length, 1);
            t.equal(links[0].provider, 'oidc');
            t.equal(links[0].providerId, OAUTH_LOGIN);
            t.equal(links[0].recordRef, auth.record.id);
            t.equal(links[0].collectionRef, USERS_COLLECTION_ID);
            await expectError(client().collection('users').authWithOAuth2Code(
                provider.name, code, provider.codeVerifier, OIDC.redirectURL), 400,
            { message: 'Failed to fetch OAuth2 token.' });
        }

        step = 'authWithOAuth2Code: sign-in again';
        {
            const c = client();
            const { provider, code } = await oauth2Code(c, OAUTH_LOGIN);
            const auth = await c.collection('users').authWithOAuth2Code(
                provider.name, code, provider.codeVerifier, OIDC.redirectURL);
            t.equal(auth.record.id, oauthUser.id);
            t.equal(auth.meta.isNew, false);

            step = 'unlinkExternalAuth';
            t.equal(await c.collection('users').unlinkExternalAuth(oauthUser.id, 'oidc'), true);
            t.deepEqual(await c.collection('users').listExternalAuths(oauthUser.id), []);
        }

        step = 'authWithOAuth2Code: wrong verifier, bad provider';
        {
            const c = client();
            const { provider, code } = await oauth2Code(c, OAUTH_LOGIN);
            const other = (await c.collection('users').listAuthMethods()).oauth2.providers[0];
            t.notEqual(other.codeVerifier, provider.codeVerifier);
            await expectError(c.collection('users').authWithOAuth2Code(
                provider.name, code, other.codeVerifier, OIDC.redirectURL), 400,
            { message: 'Failed to fetch OAuth2 token.' });
            await expectFieldError(c.collection('users').authWithOAuth2Code(
                'github', code, provider.codeVerifier, OIDC.redirectURL), 'provider', 'validation_invalid_provider');
            t.equal(c.authStore.isValid, false);
        }

        step = 'authWithOAuth2Code: createData';
        {
            const c = client();
            const { provider, code } = await oauth2Code(c, OAUTH_LOGIN2);
            const auth = await c.collection('users').authWithOAuth2Code(
                provider.name, code, provider.codeVerifier, OIDC.redirectURL, { name: 'Chosen Name' });
            t.equal(auth.meta.isNew, true);
            t.equal(auth.record.email, `${OAUTH_LOGIN2}@example.com`);
            t.equal(auth.record.name, 'Chosen Name', 'createData wins over the mapped name');
            t.equal(await pb.collection('users').delete(auth.record.id), true);
        }

        step = 'OAuth2 with MFA: 401 mfaId, then OTP';
        {
            await pb.collections.update('users', { mfa: { enabled: true } });
            const c = client();
            const { provider, code } = await oauth2Code(c, OAUTH_LOGIN);
            const err = await expectError(c.collection('users').authWithOAuth2Code(
                provider.name, code, provider.codeVerifier, OIDC.redirectURL), 401);
            const mfaId = err.response.mfaId;
            t.match(mfaId ?? '', RECORD_ID);
            const email = `${OAUTH_LOGIN}@example.com`;
            const { otpId } = await c.collection('users').requestOTP(email);
            const otp = otpFrom(checkMessage(await inbox.next(email), email, APP_NAME), otpLength);
            const auth = await c.collection('users').authWithOTP(otpId, otp, { mfaId });
            t.equal(auth.record.id, oauthUser.id);
            await pb.collections.update('users', { mfa: { enabled: false } });
        }
    }

    // ----------------------------------------------------------------- cleanup
    step = 'cleanup';
    {
        const coll = await pb.collections.update('users', {
            mfa: { enabled: false }, otp: { enabled: false }, oauth2: { enabled: false, providers: [] },
        });
        t.equal(coll.otp.enabled, false);
        t.equal(coll.oauth2.enabled, false);
        for (const id of [a.id, b.id, oauthUser?.id].filter(Boolean)) {
            t.equal(await pb.collection('users').delete(id), true);
        }
        const settings = await pb.settings.update({
            meta: { appName: before.meta.appName, appURL: before.meta.appURL,
                senderName: before.meta.senderName, senderAddress: before.meta.senderAddress },
            smtp: { enabled: before.smtp.enabled, host: before.smtp.host, port: before.smtp.port },
        });
        t.equal(settings.smtp.enabled, before.smtp.enabled);
        await inbox.expectNone('every email was expected', 0);
    }

    step = 'done';
    console.log(JSON.stringify({ ok: true, checks: checkCount(), sections, mails: inbox.seen.size }));
}

run(main, () => step);
