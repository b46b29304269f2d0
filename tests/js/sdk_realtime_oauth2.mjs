// Real-client test of the SDK's all-in-one OAuth2 sign-in, which rides on realtime:
// `authWithOAuth2({provider, urlCallback})` opens a stream, subscribes to `@oauth2`, and
// puts its client id in the provider URL as `state`; the provider sends the browser to
// `<server>/api/oauth2-redirect?code&state`, and the server hands `{state, code}` to that
// client; the SDK then finishes with auth-with-oauth2.
//
// Usage:
//   node sdk_realtime_oauth2.mjs <baseURL> <superuserEmail> <superuserPassword>
// with BASTION_OIDC_ISSUER, BASTION_OIDC_CLIENT_ID, BASTION_OIDC_CLIENT_SECRET: a
// node-oidc-provider (tests/js/oidc/provider.mjs) with its development login page (any
// login name signs in as <login>@example.com, verified), whose client has
// `<baseURL>/api/oauth2-redirect` among its redirect URIs. The script plays the browser in
// `urlCallback` (fetch with a cookie jar, the login form filled in, redirects followed up to
// the server's redirect, which it then opens).
//
// On success the last stdout line is {"ok":true,"checks":N}. On the first failed check it
// prints `FAIL [step] ...` to stderr and exits 1.

import { EventSource } from 'eventsource';
import PocketBase, { ClientResponseError } from 'pocketbase';
import { browse, checkCount, run, t } from './harness.mjs';

globalThis.EventSource = EventSource;

const [baseURL, email, password] = [
    process.argv[2] || process.env.BASTION_URL,
    process.argv[3] || process.env.BASTION_SUPERUSER_EMAIL,
    process.argv[4] || process.env.BASTION_SUPERUSER_PASSWORD,
];
const OIDC = {
    issuer: process.env.BASTION_OIDC_ISSUER,
    clientId: process.env.BASTION_OIDC_CLIENT_ID,
    clientSecret: process.env.BASTION_OIDC_CLIENT_SECRET,
};
if (!baseURL || !email || !password || !OIDC.issuer || !OIDC.clientId || !OIDC.clientSecret) {
    console.error('usage: BASTION_OIDC_ISSUER=... BASTION_OIDC_CLIENT_ID=... BASTION_OIDC_CLIENT_SECRET=... '
        + 'node sdk_realtime_oauth2.mjs <baseURL> <superuserEmail> <superuserPassword>');
    process.exit(2);
}

const RUN = Date.now().toString(36);
const REDIRECT = `${baseURL}/api/oauth2-redirect`;
const CLIENT_ID = /^[A-Za-z0-9]{40}$/;
const JWT = /^[\w-]+\.[\w-]+\.[\w-]+$/;

let step = 'init';

function client() {
    const pb = new PocketBase(baseURL);
    pb.autoCancellation(false);
    return pb;
}


/**
 * A `urlCallback` that signs in at the provider as `login` and lands on the server's
 * redirect; `seen` gets the provider URL, its state and the landing's status.
 */
function browser(login, seen) {
    return async (url) => {
        const u = new URL(url);
        seen.url = url;
        seen.state = u.searchParams.get('state');
        const landing = await browse(url, login, REDIRECT);
        const params = new URL(landing).searchParams;
        seen.code = params.get('code');
        seen.returnedState = params.get('state');
        const res = await fetch(landing, { redirect: 'manual' });
        seen.status = res.status;
        await res.arrayBuffer();
    };
}

async function main() {
    const su = client();
    step = 'superuser authWithPassword';
    await su.collection('_superusers').authWithPassword(email, password);

    step = 'users: the oidc provider';
    const discovery = await (await fetch(`${OIDC.issuer}/.well-known/openid-configuration`)).json();
    const before = await su.collections.getOne('users');
    await su.collections.update('users', {
        oauth2: {
            enabled: true,
            providers: [{
                name: 'oidc',
                displayName: 'Test IdP',
                clientId: OIDC.clientId,
                clientSecret: OIDC.clientSecret,
                authURL: discovery.authorization_endpoint,
                tokenURL: discovery.token_endpoint,
                userInfoURL: discovery.userinfo_endpoint,
                extra: { issuer: OIDC.issuer },
            }],
        },
    });
    const created = [];
    const login = `sdk-rt-oauth-${RUN}`;

    step = 'authWithOAuth2: sign-up through @oauth2';
    {
        const c = client();
        const seen = {};
        const auth = await c.collection('users').authWithOAuth2({ provider: 'oidc', urlCallback: browser(login, seen) });
        created.push(auth.record.id);
        t.ok(seen.url.startsWith(`${discovery.authorization_endpoint}?`), seen.url);
        t.match(seen.state ?? '', CLIENT_ID, 'state: the realtime client id');
        t.equal(new URL(seen.url).searchParams.get('redirect_uri'), REDIRECT);
        t.equal(seen.returnedState, seen.state, 'the provider returns the state');
        t.ok(seen.code, 'a code');
        t.ok(seen.status < 400, `the redirect page answers ${seen.status}`);
        t.match(auth.token, JWT);
        t.equal(auth.record.email, `${login}@example.com`);
        t.equal(auth.record.verified, true);
        t.equal(auth.meta.isNew, true);
        t.equal(auth.meta.id, login);
        t.equal(auth.meta.email, `${login}@example.com`);
        t.equal(c.authStore.isValid, true);
        t.equal(c.authStore.record.id, auth.record.id);
        t.equal(c.realtime.isConnected, false, 'the one-off stream is not the client\'s');
        t.equal((await c.collection('users').authRefresh()).record.id, auth.record.id);
    }

    step = 'authWithOAuth2: sign-in again, createData';
    {
        const c = client();
        const seen = {};
        const auth = await c.collection('users').authWithOAuth2({ provider: 'oidc', urlCallback: browser(login, seen) });
        t.equal(auth.meta.isNew, false);
        t.equal(auth.record.id, created[0]);
        const other = `sdk-rt-oauth2-${RUN}`;
        const second = await client().collection('users').authWithOAuth2({
            provider: 'oidc', urlCallback: browser(other, {}), createData: { name: 'Chosen Name' },
        });
        created.push(second.record.id);
        t.equal(second.meta.isNew, true);
        t.equal(second.record.email, `${other}@example.com`);
        t.equal(second.record.name, 'Chosen Name');
        t.notEqual(seen.state, undefined);
    }

    step = 'authWithOAuth2: two sign-ins at once, each gets its own';
    {
        const [x, y] = [client(), client()];
        const [sx, sy] = [{}, {}];
        const [ax, ay] = await Promise.all([
            x.collection('users').authWithOAuth2({ provider: 'oidc', urlCallback: browser(login, sx) }),
            y.collection('users').authWithOAuth2({ provider: 'oidc', urlCallback: browser(`sdk-rt-oauth2-${RUN}`, sy) }),
        ]);
        t.notEqual(sx.state, sy.state);
        t.equal(ax.record.id, created[0]);
        t.equal(ay.record.id, created[1]);
    }

    step = 'authWithOAuth2: the provider sends an error back';
    {
        const c = client();
        let err;
        try {
            await c.collection('users').authWithOAuth2({
                provider: 'oidc',
                urlCallback: async (url) => {
                    const state = new URL(url).searchParams.get('state');
                    const res = await fetch(`${REDIRECT}?state=${state}&error=access_denied`, { redirect: 'manual' });
                    await res.arrayBuffer();
                },
            });
        } catch (e) {
            err = e;
        }
        t.ok(err instanceof ClientResponseError, `rejected with a ClientResponseError: ${err}`);
        t.match(String(err.originalError?.message), /OAuth2 redirect error/);
        t.equal(c.authStore.isValid, false);
    }

    step = 'cleanup';
    for (const id of created) t.equal(await su.collection('users').delete(id), true);
    await su.collections.update('users', { oauth2: { enabled: before.oauth2.enabled, providers: [] } });
    console.log(JSON.stringify({ ok: true, checks: checkCount() }));
}

run(main, () => step);
