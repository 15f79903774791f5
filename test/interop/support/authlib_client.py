"""A relying party written with Authlib (Debian's python3-authlib), driven by test/interop/authlib.test.ts.

Reads one JSON command on stdin, prints one JSON line on stdout. An exception becomes
{"error": "<ExceptionClass>", "code": <OAuth error code or null>, "message": ...} with exit status 0,
so the test can assert on what Authlib refused. Run with AUTHLIB_INSECURE_TRANSPORT=1: the test OP is
on http://127.0.0.1, which Authlib refuses otherwise.
"""
import json
import sys

from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata

TIMEOUT = 10


def session(cmd, **more):
    s = OAuth2Session(
        client_id=cmd['client_id'], client_secret=cmd.get('client_secret'),
        token_endpoint_auth_method=cmd['auth_method'], redirect_uri=cmd.get('redirect_uri'),
        default_timeout=TIMEOUT, **more)
    # straight to loopback: no proxy from the environment
    s.trust_env = False
    return s


def discover(issuer):
    """The OP's metadata, what Authlib's OpenID Connect Discovery model objects to in it, and its key set."""
    with OAuth2Session(default_timeout=TIMEOUT) as s:
        s.trust_env = False
        res = s.get(issuer + '/.well-known/openid-configuration', withhold_token=True)
        res.raise_for_status()
        metadata = OpenIDProviderMetadata(res.json())
        if metadata['issuer'] != issuer:
            raise ValueError('issuer %r in the metadata, expected %r' % (metadata['issuer'], issuer))
        # what metadata.validate() checks, one member at a time, so that every objection is seen
        objections = []
        for key in metadata.REGISTRY_KEYS:
            try:
                getattr(metadata, 'validate_' + key)()
            except ValueError as err:
                objections.append(str(err))
        res = s.get(metadata['jwks_uri'], withhold_token=True)
        res.raise_for_status()
        return metadata, objections, res.json()


def validate_id_token(id_token, jwks, issuer, client_id, nonce, access_token=None):
    """Authlib's own ID token checks: signature against `jwks`, iss, aud, azp, exp, iat, nonce, at_hash when present."""
    claims = jwt.decode(
        id_token, JsonWebKey.import_key_set(jwks), claims_cls=CodeIDToken,
        claims_options={
            'iss': {'essential': True, 'value': issuer},
            'aud': {'essential': True, 'value': client_id},
            'sub': {'essential': True},
            'nonce': {'essential': True},
        },
        claims_params={'nonce': nonce, 'client_id': client_id, 'access_token': access_token})
    claims.validate()
    return claims


def other_key_set(kid):
    """A freshly generated RSA public key under `kid`: found by kid, so only the signature can fail."""
    key = JsonWebKey.generate_key('RSA', 2048, is_private=True)
    public = key.as_dict(is_private=False)
    public.update(kid=kid, alg='RS256', use='sig')
    return {'keys': [public]}


def authorize(cmd):
    metadata, _, _ = discover(cmd['issuer'])
    s = session(cmd, scope=cmd['scope'], code_challenge_method='S256' if cmd.get('pkce') else None)
    nonce = generate_token(24)
    code_verifier = generate_token(48) if cmd.get('pkce') else None
    extra = {'prompt': cmd['prompt']} if cmd.get('prompt') else {}
    url, state = s.create_authorization_url(
        metadata['authorization_endpoint'], code_verifier=code_verifier, nonce=nonce, **extra)
    return {'url': url, 'state': state, 'nonce': nonce, 'code_verifier': code_verifier}


def exchange(cmd):
    metadata, _, jwks = discover(cmd['issuer'])
    s = session(cmd)
    extra = {'code_verifier': cmd['code_verifier']} if cmd.get('code_verifier') else {}
    token = s.fetch_token(
        metadata['token_endpoint'], authorization_response=cmd['callback'], state=cmd['state'], **extra)
    claims = validate_id_token(
        token['id_token'], jwks, cmd['issuer'], cmd['client_id'], cmd['nonce'], token['access_token'])
    res = s.get(metadata['userinfo_endpoint'])
    res.raise_for_status()
    return {
        'claims': dict(claims), 'header': dict(claims.header), 'jwks_kids': [k['kid'] for k in jwks['keys']],
        'userinfo': res.json(), 'token_type': token['token_type'],
        'id_token': token['id_token'], 'refresh_token': token.get('refresh_token'),
    }


def validate(cmd):
    """An ID token checked again with the given nonce and client_id; with `other_key_kid`, against a fresh key under that kid."""
    _, _, jwks = discover(cmd['issuer'])
    if cmd.get('other_key_kid'):
        jwks = other_key_set(cmd['other_key_kid'])
    claims = validate_id_token(cmd['id_token'], jwks, cmd['issuer'], cmd['client_id'], cmd['nonce'])
    return {'claims': dict(claims)}


def refresh(cmd):
    metadata, _, _ = discover(cmd['issuer'])
    s = session(cmd)
    token = s.refresh_token(metadata['token_endpoint'], refresh_token=cmd['refresh_token'])
    res = s.get(metadata['userinfo_endpoint'])
    res.raise_for_status()
    return {'access_token': token['access_token'], 'refresh_token': token.get('refresh_token'), 'userinfo': res.json()}


def client_credentials(cmd):
    metadata, _, _ = discover(cmd['issuer'])
    token = session(cmd).fetch_token(metadata['token_endpoint'], grant_type='client_credentials')
    return {'token': dict(token)}


def discovery(cmd):
    metadata, objections, jwks = discover(cmd['issuer'])
    return {'metadata': dict(metadata), 'objections': objections, 'jwks': jwks}


COMMANDS = {
    'discover': discovery, 'authorize': authorize, 'exchange': exchange, 'validate': validate,
    'refresh': refresh, 'client_credentials': client_credentials,
}


def main():
    cmd = json.loads(sys.stdin.read())
    try:
        out = COMMANDS[cmd['cmd']](cmd)
    except Exception as err:  # reported to the test, which asserts on it
        out = {'error': type(err).__name__, 'code': getattr(err, 'error', None), 'message': str(err)}
    print(json.dumps(out))


if __name__ == '__main__':
    main()
