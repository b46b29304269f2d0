// A real OpenID Connect provider for tests/integration/test_oauth2.py and
// tests/js/sdk_auth.mjs (started by tests/integration/oidc_support.py), built on
// node-oidc-provider (certified OpenID Provider library) with its development login
// pages ("devInteractions"): the test signs in by submitting the login form.
//
// Environment: OIDC_PORT (listen on 127.0.0.1), OIDC_CLIENTS (JSON list of
// {client_id, client_secret, redirect_uris}). Accounts: any login name made of
// [a-z0-9-] exists, with the email <login>@example.com, verified unless the login
// starts with "unverified". Prints "ready <issuer>" once listening.
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.OIDC_CLIENTS).map((client) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...client,
}));

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key-1', alg: 'RS256', use: 'sig' };

function account(login) {
  if (!/^[a-z0-9-]{1,64}$/.test(login)) return undefined;
  return {
    accountId: login,
    async claims() {
      return {
        sub: login,
        email: `${login}@example.com`,
        email_verified: !login.startsWith('unverified'),
        name: `Test ${login}`,
        preferred_username: login,
        picture: `https://avatars.example.com/${login}.png`,
      };
    },
  };
}

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: ['bastion-oidc-test-cookie-key'] },
  scopes: ['openid', 'email', 'profile'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'picture'],
  },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  findAccount: async (ctx, sub) => account(sub),
  // First-party client: consent is implied, so only the login page is shown.
  async loadExistingGrant(ctx) {
    const { client, session } = ctx.oidc;
    const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    session.grantIdFor(client.clientId, grant.jti);
    return grant;
  },
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.listen(port, '127.0.0.1', () => console.log(`ready ${issuer}`));
process.on('SIGTERM', () => process.exit(0));
