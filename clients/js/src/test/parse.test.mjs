// Unit tests of the header parsers (no server needed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryTokenStore, createClient, parseRetryAfter, parseWwwAuthenticate } from '../index.js';

test('several challenges, one per scheme, in order (RFC 9110 §11.6.1)', () => {
  const v =
    'Bearer realm="api", error="invalid_token", error_description="The access token expired", ' +
    'Basic realm="api", charset="UTF-8", ApiKey realm="api", header="X-API-Key"';
  assert.deepEqual(parseWwwAuthenticate(v), [
    {
      scheme: 'Bearer',
      params: { realm: 'api', error: 'invalid_token', error_description: 'The access token expired' },
    },
    { scheme: 'Basic', params: { realm: 'api', charset: 'UTF-8' } },
    { scheme: 'ApiKey', params: { realm: 'api', header: 'X-API-Key' } },
  ]);
});

test('quoted strings: commas, escaped quotes and backslashes inside; tokens unquoted', () => {
  const [c] = parseWwwAuthenticate('Digest realm="a, \\"b\\" \\\\c", qop="auth", algorithm=SHA-256, userhash=true');
  assert.deepEqual(c.params, { realm: 'a, "b" \\c', qop: 'auth', algorithm: 'SHA-256', userhash: 'true' });
});

test('step-up challenge with RFC 9470 parameters; names are case-insensitive', () => {
  const [c] = parseWwwAuthenticate(
    'Bearer Error="insufficient_user_authentication", acr_values="mfa", MAX_AGE=300',
  );
  assert.equal(c.params.error, 'insufficient_user_authentication');
  assert.equal(c.params.acr_values, 'mfa');
  assert.equal(c.params.max_age, '300');
});

test('token68, bare schemes and empty list elements', () => {
  assert.deepEqual(parseWwwAuthenticate('Negotiate YIIB+w/9==, , Bearer, Basic realm=x'), [
    { scheme: 'Negotiate', token68: 'YIIB+w/9==', params: {} },
    { scheme: 'Bearer', params: {} },
    { scheme: 'Basic', params: { realm: 'x' } },
  ]);
  assert.deepEqual(parseWwwAuthenticate('Newauth abc='), [{ scheme: 'Newauth', token68: 'abc=', params: {} }]);
});

test('malformed values are errors, not guesses', () => {
  assert.throws(() => parseWwwAuthenticate('Bearer realm="unterminated'), SyntaxError);
  assert.throws(() => parseWwwAuthenticate('Bearer realm="a" junk'), SyntaxError);
  assert.throws(() => parseWwwAuthenticate('"quoted"'), SyntaxError);
});

test('Retry-After: delay-seconds and HTTP-date (RFC 9110 §10.2.3)', () => {
  const now = Date.parse('Sun, 06 Nov 1994 08:49:37 GMT');
  assert.equal(parseRetryAfter('120', now), 120);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('Sun, 06 Nov 1994 08:49:40 GMT', now), 3);
  assert.equal(parseRetryAfter('Sun, 06 Nov 1994 08:49:00 GMT', now), 0);
  assert.equal(parseRetryAfter('-1', now), undefined);
  assert.equal(parseRetryAfter('1.5', now), undefined);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
});

test('relative URLs resolve under baseUrl; the token goes to its origin only', async () => {
  const sent = [];
  const client = createClient({
    baseUrl: 'https://api.example.com/v1',
    tokens: new MemoryTokenStore({ accessToken: 'at' }),
    fetch: async (req) => {
      sent.push([req.url, req.headers.get('authorization')]);
      return new Response('{}', { status: 200 });
    },
  });
  await client.fetch('/orders?x=1');
  await client.fetch('https://api.example.com/other');
  await client.fetch('https://elsewhere.example/orders');
  assert.deepEqual(sent, [
    ['https://api.example.com/v1/orders?x=1', 'Bearer at'],
    ['https://api.example.com/other', 'Bearer at'],
    ['https://elsewhere.example/orders', null],
  ]);
});
