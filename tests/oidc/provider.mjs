// A real OpenID provider (oidc-provider) for Sentrace's OIDC end-to-end test.
//
// Listens on 127.0.0.1 (a free port) over HTTPS with the certificate and key given in
// OIDC_TLS_CERT / OIDC_TLS_KEY (PEM files the test makes), so the issuer is
// https://127.0.0.1:<port>. Signing keys are generated at start (ES256 for access tokens,
// RS256 as the provider's default) and never written anywhere.
//
// One confidential client may use the client-credentials grant (OIDC_CLIENT_ID /
// OIDC_CLIENT_SECRET). Resource indicators (RFC 8707) make its access tokens JWTs
// (RFC 9068) for the resource OIDC_RESOURCE, with audience OIDC_RESOURCE and the extra claim
// `groups` = OIDC_GROUPS (comma-separated).
//
// With OIDC_CONSOLE_CLIENT_ID and OIDC_CONSOLE_REDIRECT set, a second, public client may use
// the authorization code flow with PKCE (the web console's login); its logins and consents
// are granted at once for the account OIDC_CONSOLE_ACCOUNT (default "console-user"), with
// the resource OIDC_RESOURCE, so a test needs no login form.
//
// Prints one JSON line {"issuer": ...} on stdout once it accepts connections; stops on
// SIGTERM or when its standard input closes (so it never outlives the test).
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import Provider from 'oidc-provider';

function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`provider.mjs: ${name} must be set`);
    process.exit(2);
  }
  return v;
}

const clientId = env('OIDC_CLIENT_ID');
const clientSecret = env('OIDC_CLIENT_SECRET');
const resource = env('OIDC_RESOURCE');
const groups = env('OIDC_GROUPS').split(',').filter(Boolean);

function privateJwk(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg, use: 'sig' };
}

const server = https.createServer({
  cert: readFileSync(env('OIDC_TLS_CERT')),
  key: readFileSync(env('OIDC_TLS_KEY')),
});

server.listen(0, '127.0.0.1', () => {
  const issuer = `https://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_post',
      },
      ...(process.env.OIDC_CONSOLE_CLIENT_ID ? [{
        client_id: process.env.OIDC_CONSOLE_CLIENT_ID,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: [env('OIDC_CONSOLE_REDIRECT')],
        token_endpoint_auth_method: 'none',
      }] : []),
    ],
    jwks: {
      keys: [
        privateJwk('rsa', { modulusLength: 2048 }, 'RS256'),
        privateJwk('ec', { namedCurve: 'P-256' }, 'ES256'),
      ],
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator) => {
          if (indicator !== resource) {
            throw new Provider.errors.InvalidTarget();
          }
          return {
            scope: 'traces:read',
            audience: resource,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    extraTokenClaims: () => ({ groups }),
  });
  provider.on('server_error', (ctx, err) => console.error('provider server_error', err));
  server.on('request', provider.callback());
  if (process.env.OIDC_CONSOLE_CLIENT_ID) {
    // Interactions answered at once: log in as the test account, grant openid and the resource.
    const account = process.env.OIDC_CONSOLE_ACCOUNT || 'console-user';
    const callback = provider.callback();
    server.removeAllListeners('request');
    server.on('request', async (req, res) => {
      if (!req.url.startsWith('/interaction/')) return callback(req, res);
      try {
        const details = await provider.interactionDetails(req, res);
        if (details.prompt.name === 'login') {
          await provider.interactionFinished(req, res, { login: { accountId: account } }, { mergeWithLastSubmission: false });
          return;
        }
        const grant = details.grantId
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
        grant.addOIDCScope('openid');
        grant.addResourceScope(resource, 'traces:read');
        const grantId = await grant.save();
        await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      } catch (err) {
        console.error('provider interaction error', err);
        res.statusCode = 500;
        res.end();
      }
    });
  }
  console.log(JSON.stringify({ issuer }));
});

process.on('SIGTERM', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
