// @gatehouse/client: a `fetch` wrapper for APIs behind Gatehouse.
//
// The rules (docs/semantics.md in the Gatehouse repository):
// - 401 `invalid_token` / `token_expired`: refresh ONCE (one refresh shared by every concurrent
//   request), then retry the original request once. A body that cannot be replayed (a stream)
//   is not retried: the caller gets `RequestNotReplayableError` after the refresh.
// - A refresh that fails, or any other 401 (revoked, missing credentials): `onSignInRequired`
//   and `SignInRequiredError`.
// - 401 `insufficient_user_authentication` (RFC 9470 §3): `onStepUp({acrValues, maxAge})` and
//   `StepUpRequiredError`; signing in again with a stronger method is the only fix.
// - 403: `onForbidden(problem)` and `ForbiddenError`; never retried (new credentials would not help).
// - 429 / 503 with `Retry-After` (RFC 9110 §10.2.3) not above `maxRetryAfterSeconds`: wait,
//   retry once. Otherwise the response is returned as it is.
// Everything else, success or not, is returned as the `Response`, like `fetch`.
// No runtime dependencies; uses only `fetch`, `Headers`, `Request`, `Response`.

/** The tokens of one signed-in user. */
export interface TokenPair {
  accessToken: string;
  refreshToken?: string;
}

/** Where the client keeps tokens (memory, `localStorage`, a file...). `set(null)` signs out. */
export interface TokenStore {
  get(): TokenPair | null | Promise<TokenPair | null>;
  set(tokens: TokenPair | null): void | Promise<void>;
}

/** A `TokenStore` in memory. */
export class MemoryTokenStore implements TokenStore {
  private tokens: TokenPair | null;
  constructor(tokens: TokenPair | null = null) {
    this.tokens = tokens;
  }
  get(): TokenPair | null {
    return this.tokens;
  }
  set(tokens: TokenPair | null): void {
    this.tokens = tokens;
  }
}

/** An RFC 9457 problem body as Gatehouse sends it (`application/problem+json`). */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  /** The stable machine-readable code, e.g. `token_expired`, `insufficient_role`. */
  error?: string;
  message?: string;
  timestamp?: string;
  request_id?: string;
  required_roles?: string[];
  required_scopes?: string[];
  accepted_schemes?: string[];
  acr_values?: string;
  max_age?: number;
  retry_after?: number;
  expired_at?: string;
  /** Row 25, 403 `requirement_not_met`: what the user must do first. */
  requirements?: Requirement[];
  [member: string]: unknown;
}

/** One unmet requirement of a 403 `requirement_not_met` (row 25). */
export interface Requirement {
  /** The stable code to act on, e.g. `payment_method_required`. */
  code: string;
  /** Text to show the user; absent with the gateway's `disclosure = "minimal"`. */
  message?: string;
  /** Where the user can fix it: a path of the site, or an `https://` URL. */
  remedy_url?: string;
}

/** What a route asks for when it answers 401 `insufficient_user_authentication` (RFC 9470). */
export interface StepUpChallenge {
  /** Acceptable authentication context classes, e.g. `["mfa"]`; empty when not asked. */
  acrValues: string[];
  /** Largest acceptable age of the authentication, in seconds. */
  maxAge?: number;
  problem?: Problem;
}

/** One challenge of a `WWW-Authenticate` field (RFC 9110 §11.3, §11.6.1). */
export interface Challenge {
  /** The scheme as sent; compare case-insensitively (RFC 9110 §11.1). */
  scheme: string;
  token68?: string;
  /** Parameters; names lower-cased (they are case-insensitive, RFC 9110 §11.2). */
  params: Record<string, string>;
}

/** Base of every error this client throws; carries the response status and problem body. */
export class GatehouseError extends Error {
  readonly status: number;
  readonly problem?: Problem;
  readonly response?: Response;
  constructor(message: string, status: number, problem?: Problem, response?: Response) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.problem = problem;
    this.response = response;
  }
}

/** The user must sign in again: no token, a refresh that failed, or a revoked session. */
export class SignInRequiredError extends GatehouseError {}
/** 403: the identity is known and not allowed. Never retried. */
export class ForbiddenError extends GatehouseError {
  /**
   * Row 25 (`requirement_not_met`): every unmet requirement, so an app can show "Add a
   * payment method" with its link; empty for every other 403.
   */
  get requirements(): Requirement[] {
    const r = this.problem?.requirements;
    return Array.isArray(r)
      ? r.filter((x): x is Requirement => typeof x === 'object' && x !== null && typeof x.code === 'string')
      : [];
  }
}
/** 401 `insufficient_user_authentication`: sign in again with a stronger or fresher method. */
export class StepUpRequiredError extends GatehouseError {
  readonly challenge: StepUpChallenge;
  constructor(challenge: StepUpChallenge, status: number, response?: Response) {
    super('step-up authentication required', status, challenge.problem, response);
    this.challenge = challenge;
  }
}
/** The token was refreshed but the request body was a stream already consumed: send it again. */
export class RequestNotReplayableError extends GatehouseError {}

export interface ClientOptions {
  /** Origin (and optional base path) of the Gatehouse gateway, e.g. `https://api.example.com`. */
  baseUrl: string;
  tokens: TokenStore;
  onSignInRequired?: (problem?: Problem) => void;
  onForbidden?: (problem: Problem) => void;
  onStepUp?: (challenge: StepUpChallenge) => void;
  /** Longest `Retry-After` the client waits out before its one retry; default 30. */
  maxRetryAfterSeconds?: number;
  /** The `fetch` to call; default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

export interface GatehouseClient {
  /** `fetch` with the rules above; relative URLs resolve against `baseUrl`. */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** `POST /auth/login`; stores and returns the tokens. Throws `GatehouseError` on refusal. */
  login(username: string, password: string): Promise<TokenPair>;
  /** `POST /auth/mfa` with the `mfa_token` of a `mfa_required` refusal and a TOTP code. */
  completeMfa(mfaToken: string, code: string): Promise<TokenPair>;
  /** Refresh now (single flight with any refresh in progress). */
  refresh(): Promise<TokenPair>;
  /** `POST /auth/logout` (revokes the session) and clears the store. */
  logout(): Promise<void>;
}

const REFRESHABLE = new Set(['invalid_token', 'token_expired']);

export function createClient(options: ClientOptions): GatehouseClient {
  const base = new URL(options.baseUrl);
  const doFetch: typeof fetch = options.fetch ?? ((i, n) => globalThis.fetch(i, n));
  const cap = options.maxRetryAfterSeconds ?? 30;
  const store = options.tokens;
  let inflight: Promise<TokenPair> | null = null;

  const endpoint = (path: string) => new URL(path.replace(/^\//, ''), base.href.endsWith('/') ? base : base.href + '/');

  async function postJson(path: string, body: unknown, bearer?: string): Promise<Response> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    return doFetch(endpoint(path), { method: 'POST', headers, body: JSON.stringify(body) });
  }

  async function tokensFrom(res: Response): Promise<TokenPair> {
    const body = (await res.json()) as { access_token?: unknown; refresh_token?: unknown };
    if (typeof body.access_token !== 'string') {
      throw new GatehouseError('token response without `access_token`', res.status);
    }
    const pair: TokenPair = { accessToken: body.access_token };
    if (typeof body.refresh_token === 'string') pair.refreshToken = body.refresh_token;
    await store.set(pair);
    return pair;
  }

  function signInRequired(status: number, problem?: Problem, response?: Response): SignInRequiredError {
    options.onSignInRequired?.(problem);
    return new SignInRequiredError('sign-in required', status, problem, response);
  }

  async function runRefresh(): Promise<TokenPair> {
    const current = await store.get();
    if (!current?.refreshToken) throw signInRequired(401);
    const res = await postJson('/auth/refresh', { refresh_token: current.refreshToken });
    if (res.ok) return tokensFrom(res);
    const problem = await readProblem(res);
    if (res.status === 400 || res.status === 401 || res.status === 403) {
      // Expired, revoked, unknown or reused refresh token: the session is over.
      await store.set(null);
      throw signInRequired(res.status, problem, res);
    }
    throw new GatehouseError(`refresh failed with status ${res.status}`, res.status, problem, res);
  }

  function refresh(): Promise<TokenPair> {
    // Single flight: every caller during one refresh shares its promise.
    if (!inflight) {
      inflight = runRefresh().finally(() => {
        inflight = null;
      });
    }
    return inflight;
  }

  async function send(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    // A relative string resolves under `baseUrl` (its path included), like the `/auth/*` calls.
    const target = typeof input === 'string' && !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(input) ? endpoint(input) : input;
    const request = new Request(target, init);
    const ours = new URL(request.url).origin === base.origin;
    // A stream body given in `init` cannot be sent twice; a `Request` built here buffers nothing,
    // so we keep a pristine clone to send (clones tee the body) unless the body is a stream.
    const replayable = init?.body === undefined || init.body === null || !isStream(init.body);
    let refreshed = false;
    let waited = false;
    for (;;) {
      const req = replayable ? request.clone() : request;
      // Only to our own origin, and never over a caller's own `Authorization`.
      const tokens = ours && !request.headers.has('authorization') ? await store.get() : null;
      const usedToken = tokens?.accessToken;
      if (usedToken) req.headers.set('authorization', `Bearer ${usedToken}`);
      const res = await doFetch(req);
      if (!ours) return res;

      if (res.status === 401) {
        const problem = await readProblem(res);
        const code = errorCode(res, problem);
        if (code === 'insufficient_user_authentication') {
          const challenge = stepUpChallenge(res, problem);
          options.onStepUp?.(challenge);
          throw new StepUpRequiredError(challenge, res.status, res);
        }
        if (code !== undefined && REFRESHABLE.has(code) && usedToken && !refreshed) {
          refreshed = true;
          const now = await store.get();
          // Another request already refreshed since we read the token: use its result.
          if (!now || now.accessToken === usedToken) await refresh();
          if (!replayable) {
            throw new RequestNotReplayableError(
              'the access token was refreshed but the request body is a stream and was not resent',
              res.status,
              problem,
              res,
            );
          }
          continue;
        }
        throw signInRequired(res.status, problem, res);
      }
      if (res.status === 403) {
        const problem = (await readProblem(res)) ?? { status: 403 };
        options.onForbidden?.(problem);
        throw new ForbiddenError(`forbidden: ${problem.error ?? 'no reason given'}`, 403, problem, res);
      }
      if ((res.status === 429 || res.status === 503) && !waited && replayable) {
        const delay = parseRetryAfter(res.headers.get('retry-after'), Date.now());
        if (delay !== undefined && delay <= cap) {
          waited = true;
          await res.body?.cancel();
          await sleep(delay * 1000, request.signal);
          continue;
        }
      }
      return res;
    }
  }

  return {
    fetch: send,
    async login(username, password) {
      const res = await postJson('/auth/login', { username, password });
      if (!res.ok) throw new GatehouseError(`login refused with status ${res.status}`, res.status, await readProblem(res), res);
      return tokensFrom(res);
    },
    async completeMfa(mfaToken, code) {
      const res = await postJson('/auth/mfa', { mfa_token: mfaToken, code });
      if (!res.ok) throw new GatehouseError(`mfa refused with status ${res.status}`, res.status, await readProblem(res), res);
      return tokensFrom(res);
    },
    refresh,
    async logout() {
      const tokens = await store.get();
      await store.set(null);
      if (!tokens) return;
      const res = await postJson('/auth/logout', {}, tokens.accessToken);
      await res.body?.cancel();
    },
  };
}

function isStream(body: BodyInit): boolean {
  return typeof ReadableStream !== 'undefined' && body instanceof ReadableStream;
}

/** Reads a problem+json (or JSON) body; `undefined` for any other body. */
export async function readProblem(res: Response): Promise<Problem | undefined> {
  const type = res.headers.get('content-type') ?? '';
  if (!/^application\/(problem\+)?json\b/i.test(type.trim())) {
    await res.body?.cancel();
    return undefined;
  }
  try {
    const body: unknown = await res.json();
    return body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Problem) : undefined;
  } catch {
    return undefined;
  }
}

/** The refusal code: the body's `error`, else `X-Gatehouse-Error`, else the Bearer challenge's `error`. */
function errorCode(res: Response, problem?: Problem): string | undefined {
  if (typeof problem?.error === 'string') return problem.error;
  const header = res.headers.get('x-gatehouse-error');
  if (header) return header;
  return bearer(res)?.params.error;
}

function bearer(res: Response): Challenge | undefined {
  const value = res.headers.get('www-authenticate');
  if (!value) return undefined;
  return parseWwwAuthenticate(value).find((c) => c.scheme.toLowerCase() === 'bearer');
}

function stepUpChallenge(res: Response, problem?: Problem): StepUpChallenge {
  const params = bearer(res)?.params ?? {};
  const acr = params.acr_values ?? (typeof problem?.acr_values === 'string' ? problem.acr_values : '');
  const ageRaw = params.max_age ?? (problem?.max_age !== undefined ? String(problem.max_age) : undefined);
  const challenge: StepUpChallenge = { acrValues: acr.split(' ').filter((v) => v !== '') };
  if (ageRaw !== undefined && /^\d+$/.test(ageRaw)) challenge.maxAge = Number(ageRaw);
  if (problem) challenge.problem = problem;
  return challenge;
}

/**
 * `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns whole seconds to wait
 * (0 for a date in the past), or `undefined` when absent or invalid.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value == null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  // HTTP-date: IMF-fixdate (and the obsolete forms, which Date.parse also reads).
  if (!/^[A-Za-z]{3,9}, /.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/**
 * Parses a `WWW-Authenticate` value (several fields joined with `,` are one value) into its
 * challenges, per RFC 9110 §11.2-11.3 and §11.6.1:
 *   challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
 *   auth-param = token BWS "=" BWS ( token / quoted-string )
 * Throws `SyntaxError` on a malformed value.
 */
export function parseWwwAuthenticate(value: string): Challenge[] {
  const s = value;
  let i = 0;
  const out: Challenge[] = [];
  const ws = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = () => {
    const start = i;
    while (i < s.length && TCHAR.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  const quoted = () => {
    // quoted-string (RFC 9110 §5.6.4) with quoted-pair unescaping.
    i++;
    let v = '';
    while (i < s.length) {
      const c = s[i]!;
      if (c === '"') {
        i++;
        return v;
      }
      if (c === '\\') {
        if (i + 1 >= s.length) break;
        v += s[i + 1];
        i += 2;
        continue;
      }
      v += c;
      i++;
    }
    throw new SyntaxError('unterminated quoted-string in WWW-Authenticate');
  };
  // Skip empty list elements (RFC 9110 §5.6.1).
  const commas = () => {
    for (;;) {
      ws();
      if (s[i] === ',') i++;
      else return;
    }
  };
  commas();
  while (i < s.length) {
    const scheme = token();
    if (!scheme) throw new SyntaxError(`expected an auth-scheme at offset ${i} of WWW-Authenticate`);
    const ch: Challenge = { scheme, params: {} };
    out.push(ch);
    const afterScheme = i;
    ws();
    if (i === s.length || s[i] === ',') {
      commas();
      continue;
    }
    if (i === afterScheme) throw new SyntaxError(`expected a space after scheme \`${scheme}\``);
    // token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    const m = /^[A-Za-z0-9\-._~+/]+=*/.exec(s.slice(i));
    if (m) {
      const after = i + m[0].length;
      let j = after;
      while (j < s.length && (s[j] === ' ' || s[j] === '\t')) j++;
      if (j === s.length || s[j] === ',') {
        // token68 (`abc==`, or even `a=`: an auth-param needs a value after `=`).
        ch.token68 = m[0];
        i = j;
        commas();
        continue;
      }
    }
    // #auth-param; a following `token SP` (no `=`) starts the next challenge.
    for (;;) {
      ws();
      const save = i;
      const name = token();
      if (!name) throw new SyntaxError(`expected an auth-param at offset ${i} of WWW-Authenticate`);
      ws();
      if (s[i] !== '=') {
        // The next challenge's scheme.
        i = save;
        break;
      }
      i++;
      ws();
      const v = s[i] === '"' ? quoted() : token();
      ch.params[name.toLowerCase()] = v;
      ws();
      if (i === s.length) break;
      if (s[i] !== ',') throw new SyntaxError(`unexpected \`${s[i]}\` at offset ${i} of WWW-Authenticate`);
      commas();
      if (i === s.length) break;
    }
  }
  return out;
}

function sleep(ms: number, signal?: AbortSignal | null): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
