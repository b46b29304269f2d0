// What the SDK scripts share: a counting `assert`, the error expectation, and the runner
// that prints the one-line summary or the first failure. The test copies this file next to
// each script it runs.

import assert from 'node:assert/strict';
import { ClientResponseError } from 'pocketbase';

let checks = 0;

/** The number of checks made through `t` so far. */
export const checkCount = () => checks;

/** `node:assert/strict` where every call counts as one check. */
export const t = new Proxy(assert, {
    get(target, prop) {
        const value = target[prop];
        if (typeof value !== 'function') return value;
        return (...args) => {
            checks++;
            return value.apply(target, args);
        };
    },
});

/**
 * Awaits `promise`, which must reject with a ClientResponseError of `status`. With
 * `shape`, also checks the error body's {status, message, data}; `fields` maps field
 * names to their expected `data[field].code`.
 */
export async function expectError(promise, status, { message, fields, shape = false } = {}) {
    let err;
    try {
        const value = await promise;
        assert.fail(`expected HTTP ${status}, got success: ${JSON.stringify(value)}`);
    } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        err = e;
    }
    t.ok(err instanceof ClientResponseError, `expected ClientResponseError, got ${err}`);
    t.equal(err.status, status, `status (response: ${JSON.stringify(err.response)})`);
    if (shape) {
        t.equal(err.response.status, status, 'error body `status`');
        t.equal(typeof err.response.message, 'string', 'error body `message`');
        t.ok(err.response.data && typeof err.response.data === 'object', 'error body `data` object');
    }
    if (message !== undefined) t.equal(err.response.message, message);
    for (const [field, code] of Object.entries(fields || {})) {
        const leaf = err.response.data[field];
        t.ok(leaf, `data.${field} present in ${JSON.stringify(err.response.data)}`);
        t.equal(leaf.code, code, `data.${field}.code in ${JSON.stringify(err.response.data)}`);
        t.equal(typeof leaf.message, 'string', `data.${field}.message`);
    }
    return err;
}

/** Awaits `promise`; a 404 from the server is not an error. */
export async function ignore404(promise) {
    try {
        await promise;
    } catch (e) {
        if (!(e instanceof ClientResponseError) || e.status !== 404) throw e;
    }
}

/** Runs `main`; on failure prints `FAIL [step] ...` (`currentStep()` names the step) with
 * the assertion's values or the server's response, and exits 1. */
export function run(main, currentStep) {
    main().then(
        () => process.exit(0),
        (err) => {
            const lines = [`FAIL [${currentStep()}] after ${checks} checks: ${err?.message ?? err}`];
            if (err instanceof assert.AssertionError) {
                lines.push(`  actual:   ${JSON.stringify(err.actual)}`);
                lines.push(`  expected: ${JSON.stringify(err.expected)}`);
            }
            if (err instanceof ClientResponseError) {
                lines.push(`  HTTP ${err.status} ${err.url}`);
                lines.push(`  response: ${JSON.stringify(err.response)}`);
                const cause = err.originalError?.message ?? err.originalError;
                if (cause && !err.status) lines.push(`  cause: ${cause}`);
            }
            if (err?.stack) lines.push(err.stack.split('\n').slice(1, 4).join('\n'));
            console.error(lines.join('\n'));
            process.exit(1);
        },
    );
}

/**
 * Opens `url` like a browser at an OpenID provider: keeps its cookies, submits its dev
 * login form as `login`, follows redirects and stops at the first one to `stopAt`;
 * returns that URL.
 */
export async function browse(url, login, stopAt) {
    const jar = new Map();
    let request = { method: 'GET' };
    for (let hop = 0; hop < 15; hop++) {
        const headers = { ...(request.headers || {}) };
        if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
        const res = await fetch(url, { ...request, headers, redirect: 'manual' });
        for (const cookie of res.headers.getSetCookie()) {
            const pair = cookie.split(';')[0];
            const eq = pair.indexOf('=');
            const [name, value] = [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()];
            if (value && !/expires=thu, 01 jan 1970/i.test(cookie)) jar.set(name, value);
            else jar.delete(name);
        }
        if (res.status >= 300 && res.status < 400) {
            const location = new URL(res.headers.get('location'), url).href;
            await res.arrayBuffer();
            if (location.startsWith(stopAt)) return location;
            url = location;
            request = { method: 'GET' };
            continue;
        }
        const text = await res.text();
        const action = text.match(/<form[^>]*action="([^"]+)"/)?.[1];
        if (res.status === 200 && action && text.includes('name="login"')) {
            url = new URL(action.replaceAll('&amp;', '&'), url).href;
            request = {
                method: 'POST',
                headers: { 'content-type': 'application/x-www-form-urlencoded' },
                body: new URLSearchParams({ prompt: 'login', login, password: 'any' }).toString(),
            };
            continue;
        }
        assert.fail(`unexpected answer from the provider: ${res.status} ${text.slice(0, 500)}`);
    }
    assert.fail('too many redirects at the provider');
}
