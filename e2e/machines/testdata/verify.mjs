// An independent verifier of tether's access tokens (e2e/machines): the
// jose package from the npm registry, with the checks a resource server
// of RFC 9068 makes. It reads one token from its standard input and
// prints one line of JSON: {"ok":true,"sub":...,"client_id":...,"scope":...,"kid":...}
// when the token verifies, {"ok":false,"code":...,"message":...} when it
// doesn't. The key set is fetched afresh from the JWKS URL on each run.
//
//	node verify.mjs JWKS_URL ISSUER AUDIENCE < token
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { text } from 'node:stream/consumers';

const [jwksURL, issuer, audience] = process.argv.slice(2);
if (!audience) {
  console.error('usage: node verify.mjs JWKS_URL ISSUER AUDIENCE < token');
  process.exit(2);
}
const token = (await text(process.stdin)).trim();
const jwks = createRemoteJWKSet(new URL(jwksURL), { timeoutDuration: 10000 });
try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    typ: 'at+jwt',
    algorithms: ['EdDSA'],
    requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'],
  });
  console.log(JSON.stringify({
    ok: true, sub: payload.sub, client_id: payload.client_id, scope: payload.scope, kid: protectedHeader.kid,
  }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, code: e.code ?? 'ERR_UNKNOWN', message: e.message }));
}
