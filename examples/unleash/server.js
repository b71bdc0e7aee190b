// Unleash OSS behind latch.
//
// latch signs people in, decides with its Casbin policy what they may call,
// and forwards the request with the identity it established in two headers:
// X-Latch-User (the email) and X-Latch-Roles (comma-separated role names).
// This server runs Unleash with a custom authentication hook that trusts
// those headers on the admin API: it finds or creates the Unleash user with
// that email and gives it the Unleash root role matching latch's roles, so
// Unleash's own permission checks and its event log see the real person.
//
// SECURITY: the hook believes a header. Anyone who can reach this server
// directly can claim to be any user. Unleash must therefore listen on
// loopback only (HOST defaults to 127.0.0.1 and is not meant to be changed)
// or on a pod-local port, and be reachable only through latch, which removes
// client-sent X-Latch-* headers from every request before setting its own.
//
// The SDK routes (/api/client/*, /api/frontend*) are left to Unleash: the
// SDKs authenticate there with Unleash API tokens, which latch forwards
// untouched, and the hook never looks at them.
//
// Environment:
//   DATABASE_URL         PostgreSQL, e.g. postgres://unleash@127.0.0.1:5432/unleash (required)
//   PORT                 port to listen on, on 127.0.0.1 (default 4242)
//   UNLEASH_URL          the public URL, i.e. latch's (default http://127.0.0.1:$PORT)
//   LATCH_USER_HEADER    header with the user's email (default X-Latch-User)
//   LATCH_ROLES_HEADER   header with the user's roles (default X-Latch-Roles)
//   LATCH_LOGIN_URL      where Unleash's UI sends someone without the headers
//                        (default /.latch/login?rd=/)
//   LATCH_LOGOUT_URL     where Unleash's own "Sign out" goes, method kept (default /.latch/logout)
//   LATCH_ROUTE_LOG      a file: append "METHOD PATH ROLES" for each admin request (to write policies)
//   DATABASE_SSL         Unleash's own; default here false (loopback PostgreSQL has no TLS)
//   INIT_BACKEND_API_TOKENS, INIT_FRONTEND_API_TOKENS, LOG_LEVEL: Unleash's own.
import fs from 'node:fs';
import {
    start,
    AuthenticationRequired,
    RoleName,
    SYSTEM_USER_AUDIT,
    LogLevel,
} from 'unleash-server';

const host = '127.0.0.1';
const port = Number.parseInt(process.env.PORT || '4242', 10);
const userHeader = (process.env.LATCH_USER_HEADER || 'X-Latch-User').toLowerCase();
const rolesHeader = (process.env.LATCH_ROLES_HEADER || 'X-Latch-Roles').toLowerCase();
const loginURL = process.env.LATCH_LOGIN_URL || '/.latch/login?rd=/';
const logoutURL = process.env.LATCH_LOGOUT_URL || '/.latch/logout';
const routeLog = process.env.LATCH_ROUTE_LOG;

if (!process.env.DATABASE_URL) {
    console.error('server.js: DATABASE_URL is required');
    process.exit(2);
}

// latch's roles, strongest first, and the Unleash root role each one gets.
// Someone with none of them is a Viewer: latch's policy already decided that
// they may call the route at all.
const roleOrder = [
    ['admin', RoleName.ADMIN],
    ['editor', RoleName.EDITOR],
    ['viewer', RoleName.VIEWER],
];

export function rootRoleFor(rolesValue) {
    const roles = new Set(
        String(rolesValue || '')
            .split(',')
            .map((r) => r.trim().toLowerCase())
            .filter(Boolean),
    );
    for (const [latchRole, unleashRole] of roleOrder) {
        if (roles.has(latchRole)) return unleashRole;
    }
    return RoleName.VIEWER;
}

// The SDK routes, whose credentials are Unleash API tokens.
function isSDKRoute(path) {
    return path.startsWith('/api/client') || path.startsWith('/api/frontend');
}

function isEmail(s) {
    return /^[^@\s]+@[^@\s]+$/.test(s);
}

// userResolver resolves latch's subject (an email, or a token's name) to
// an Unleash user with the wanted root role. A resolved user is kept for a few seconds so that a page load does not
// query the database once per request; a role change made in latch shows
// in Unleash within that time.
function userResolver({ userService, accessService }, logger) {
    const ttlMs = 5000;
    const cache = new Map(); // subject -> {at, rootRole, promise}

    // latch's subject is an email for people; a token's subject (latch
    // token --allow-unknown --sub ci-bot, a static API token) may be a
    // plain name, which Unleash keeps as a username (it refuses a
    // malformed email).
    async function find(subject) {
        if (isEmail(subject)) return userService.getByEmail(subject);
        return userService.store.getByQuery({ username: subject });
    }

    async function resolve(subject, rootRole) {
        const key = isEmail(subject) ? { email: subject } : { username: subject };
        let user;
        try {
            user = await find(subject);
        } catch {
            try {
                user = await userService.createUser({ ...key, rootRole }, SYSTEM_USER_AUDIT);
                logger.info(`created user ${subject} as ${rootRole}`);
            } catch (e) {
                // Two first requests raced; the other one created it.
                user = await find(subject);
            }
        }
        const current = await accessService.getRootRoleForUser(user.id);
        if (current?.name !== rootRole) {
            await userService.updateUser({ id: user.id, rootRole }, SYSTEM_USER_AUDIT);
            logger.info(`root role of ${subject}: ${current?.name} -> ${rootRole}`);
        }
        return user;
    }

    return (subject, rootRole) => {
        const key = subject.toLowerCase();
        const hit = cache.get(key);
        if (hit && hit.rootRole === rootRole && Date.now() - hit.at < ttlMs) {
            return hit.promise;
        }
        const promise = resolve(subject, rootRole);
        cache.set(key, { at: Date.now(), rootRole, promise });
        promise.catch(() => cache.delete(key));
        return promise;
    };
}

// latchAuth is Unleash's customAuthHandler. Unleash calls it once, with the
// express app, after its API-token and personal-access-token middleware and
// before its permission checks and routes (lib/app.ts).
function latchAuth(app, config, services) {
    const logger = config.getLogger('latch-auth');
    const base = config.server.baseUriPath || '';
    const userFor = userResolver(services, logger);
    const routes = routeLog ? fs.createWriteStream(routeLog, { flags: 'a' }) : null;

    // Unleash's own "Sign out" posts to /logout: send it on to latch's
    // logout with the method kept (307), which ends latch's session.
    app.post(`${base}/logout`, (_req, res) => {
        res.redirect(307, logoutURL);
    });

    // The admin API (the UI's backend): the user is who latch says.
    app.use(`${base}/api/admin`, async (req, _res, next) => {
        const subject = req.get(userHeader)?.trim();
        if (routes) {
            routes.write(`${req.method} ${base}/api/admin${req.path} ${req.get(rolesHeader) || '-'}\n`);
        }
        if (!subject) return next();
        try {
            req.user = await userFor(subject, rootRoleFor(req.get(rolesHeader)));
            next();
        } catch (e) {
            next(e);
        }
    });

    // Everything else under /api but the SDK routes needs a user: without
    // one, Unleash's own 401 body, pointing its UI at latch's login page.
    app.use(`${base}/api`, (req, res, next) => {
        if (req.user || isSDKRoute((req.baseUrl + req.path).slice(base.length))) {
            return next();
        }
        const error = new AuthenticationRequired({
            type: 'custom',
            path: loginURL,
            message: 'You must sign in to use Unleash.',
        });
        res.status(error.statusCode).json(error);
    });
}

const instance = await start({
    // PostgreSQL on loopback speaks no TLS; Unleash tries TLS unless told
    // (DATABASE_SSL, read when unleash-server is imported, still wins).
    ...(process.env.DATABASE_SSL == null ? { db: { ssl: false } } : {}),
    server: { host, port, ...(process.env.UNLEASH_URL ? {} : { unleashUrl: `http://${host}:${port}` }) },
    authentication: {
        type: 'custom',
        customAuthHandler: latchAuth,
        enableApiToken: true,
        // No built-in admin/unleash4all: every person comes through latch.
        createAdminUser: false,
    },
    logLevel: process.env.LOG_LEVEL ? undefined : LogLevel.warn,
    versionCheck: { enable: false },
    telemetry: false,
});

// Listening: a line the e2e harness waits for.
const { version } = JSON.parse(
    fs.readFileSync(new URL('./node_modules/unleash-server/package.json', import.meta.url), 'utf8'),
);
console.log(`unleash listening on http://${host}:${port} (unleash-server ${version})`);

for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, async () => {
        try {
            await instance.stop();
        } finally {
            process.exit(0);
        }
    });
}
