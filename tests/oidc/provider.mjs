// A real OpenID provider for the tests: the certified `oidc-provider` package on loopback,
// with a login page of our own (any address signs in; a filled "code" field is a second
// factor, so the ID token says `acr: mfa`, `amr: [pwd, otp]`), consent granted for the first
// party, back-channel and RP-initiated logout on. Not a test file itself.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const page = (body) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>Corp SSO</title></head><body>${body}</body></html>`;

/** Reads an `application/x-www-form-urlencoded` body. */
async function form(req) {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  return Object.fromEntries(new URLSearchParams(raw));
}

/**
 * Starts the provider on a free loopback port. `clients` are oidc-provider client metadata.
 * Resolves with `{ issuer, stop() }`.
 */
export async function startProvider(clients, { port = 0 } = {}) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'rs-1', alg: 'RS256', use: 'sig' };
  const server = createServer();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({
        sub: id,
        email: id,
        email_verified: true,
        preferred_username: id.split('@')[0],
        groups: id.startsWith('contractor') ? ['contractors'] : ['staff'],
      }),
    }),
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['preferred_username'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    // The claims of the scopes in the ID token too (the gateway reads only the ID token).
    conformIdTokenClaims: false,
    // Its outgoing requests (back-channel logout tokens) refuse loopback addresses as an SSRF
    // guard; the gateways under test are on loopback.
    fetch: (url, { dispatcher: _guard, ...options }) => fetch(url, options),
    acrValues: ['pwd', 'mfa'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // First-party client: the scopes asked for are granted without a consent screen.
    async loadExistingGrant(ctx) {
      const id = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (id) return ctx.oidc.provider.Grant.find(id);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email profile groups');
      await grant.save();
      return grant;
    },
  });
  // A logout token the gateway refused shows in the test's output.
  provider.on('backchannel.error', (_ctx, err, client) => {
    console.error(`back-channel logout to ${client.clientId} failed: ${err.message} ${err.cause?.message ?? ""} ${err.cause?.code ?? ""}`);
  });
  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const m = /^\/interaction\/([^/?]+)(\/login)?/.exec(req.url);
    if (!m) return callback(req, res);
    try {
      if (req.method === 'GET') {
        const details = await provider.interactionDetails(req, res);
        const acr = details.params.acr_values ?? '';
        res.setHeader('content-type', 'text/html; charset=utf-8');
        return res.end(
          page(`<h1>Corp SSO</h1><p id="asked">acr_values=${acr}; prompt=${details.prompt.name}</p>
<form method="post" action="/interaction/${details.uid}/login">
<label>Email <input id="login" name="login"></label>
<label>Password <input id="password" name="password" type="password"></label>
<label>Authenticator code <input id="otp" name="otp"></label>
<button type="submit">Continue</button></form>`),
        );
      }
      const body = await form(req);
      const mfa = Boolean(body.otp);
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: body.login, acr: mfa ? 'mfa' : 'pwd', amr: mfa ? ['pwd', 'otp'] : ['pwd'] } },
        { mergeWithLastSubmission: false },
      );
    } catch (e) {
      res.statusCode = 500;
      res.end(String(e));
    }
  });
  return {
    issuer,
    port: server.address().port,
    stop: () =>
      new Promise((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}
