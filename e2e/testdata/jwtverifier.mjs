// An upstream that trusts nothing but a JWT it verifies itself: what a
// backend behind latch's handoff mode jwt does. Node's standard library
// only (no JOSE package), so the check is independent of latch's Go code.
//
// For each request it reads Authorization: Bearer <JWT>, fetches the key
// set from LATCH_JWKS_URL (once, then again for an unknown kid), and checks
// alg EdDSA, the signature with the key of the token's kid, iss = ISSUER,
// aud = AUDIENCE, exp in the future and nbf/iat not in it. It answers 200
// {"claims", "userHeader", "rolesHeader", "cookie"} or 401 {"error",
// "cookie"}; cookie is the Cookie header it received.
//
// Environment: PORT (on 127.0.0.1), LATCH_JWKS_URL, ISSUER, AUDIENCE.
import http from 'node:http';
import crypto from 'node:crypto';

const port = Number.parseInt(process.env.PORT, 10);
const jwksURL = process.env.LATCH_JWKS_URL;
const issuer = process.env.ISSUER;
const audience = process.env.AUDIENCE;
if (!port || !jwksURL || !issuer || !audience) {
    console.error('jwtverifier: PORT, LATCH_JWKS_URL, ISSUER and AUDIENCE are required');
    process.exit(2);
}

let keys = new Map(); // kid -> KeyObject

async function loadKeys() {
    const resp = await fetch(jwksURL, { signal: AbortSignal.timeout(5000) });
    if (!resp.ok) throw new Error(`GET ${jwksURL}: ${resp.status}`);
    const set = await resp.json();
    const next = new Map();
    for (const jwk of set.keys || []) {
        if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') continue;
        next.set(jwk.kid || '', crypto.createPublicKey({ key: jwk, format: 'jwk' }));
    }
    keys = next;
}

function b64json(part) {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

async function verify(authz) {
    const m = /^Bearer ([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(authz || '');
    if (!m) throw new Error('no bearer JWT');
    const [, h, p, s] = m;
    const header = b64json(h);
    if (header.alg !== 'EdDSA') throw new Error(`alg ${header.alg}`);
    const kid = header.kid || '';
    if (!keys.has(kid)) await loadKeys();
    const key = keys.get(kid);
    if (!key) throw new Error(`unknown kid ${kid}`);
    if (!crypto.verify(null, Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'))) {
        throw new Error('bad signature');
    }
    const claims = b64json(p);
    const now = Date.now() / 1000;
    if (claims.iss !== issuer) throw new Error(`iss ${claims.iss}`);
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.includes(audience)) throw new Error(`aud ${claims.aud}`);
    if (typeof claims.exp !== 'number' || claims.exp <= now) throw new Error('expired');
    if (typeof claims.nbf === 'number' && claims.nbf > now + 5) throw new Error('not yet valid');
    if (typeof claims.iat === 'number' && claims.iat > now + 5) throw new Error('issued in the future');
    return claims;
}

http.createServer(async (req, res) => {
    let status = 200;
    let body;
    const cookie = req.headers.cookie || '';
    try {
        body = {
            claims: await verify(req.headers.authorization),
            userHeader: req.headers['x-latch-user'] || '',
            rolesHeader: req.headers['x-latch-roles'] || '',
            cookie,
        };
    } catch (err) {
        status = 401;
        body = { error: String(err.message || err), cookie };
    }
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
}).listen(port, '127.0.0.1', () => {
    console.log(`jwtverifier listening on 127.0.0.1:${port}`);
});
