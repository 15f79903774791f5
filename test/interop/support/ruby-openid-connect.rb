# Drives nov's openid_connect gem (Debian: ruby-openid-connect) as a Relying Party: reads one JSON
# command per line on stdin, answers each with one JSON line on stdout, until stdin closes (the gem
# loads once). The gem's own errors come back as {"error": class, "message": ..., "status": ...}, for
# the test to assert on. Each command discovers the OP again (over http: the test OP is on loopback).
require 'json'

begin
  require 'openid_connect'
rescue LoadError => e
  missing = e.message
end

unless missing
  # the gem logs to stdout by default; stdout is for the answers
  OpenIDConnect.logger = Logger.new($stderr)
  SWD.logger = Logger.new($stderr)
  # discovery builds https URLs unless told otherwise; every other URL comes from the discovery document
  SWD.url_builder = URI::HTTP
end

def discover(input)
  OpenIDConnect::Discovery::Provider::Config.discover!(input.fetch(:issuer))
end

def client_for(input, config)
  OpenIDConnect::Client.new(
    identifier: input.fetch(:client_id),
    secret: input[:client_secret],
    redirect_uri: input[:redirect_uri],
    authorization_endpoint: config.authorization_endpoint,
    token_endpoint: config.token_endpoint,
    userinfo_endpoint: config.userinfo_endpoint
  )
end

# decodes the ID token with the OP's keys (the signature is checked here) and checks its claims
def verified_claims(config, id_token, client_id:, nonce:)
  token = OpenIDConnect::ResponseObject::IdToken.decode(id_token, config.jwks)
  token.verify!(issuer: config.issuer, client_id: client_id, nonce: nonce)
  token.raw_attributes
end

# the token response, its ID token verified, and userinfo fetched with its access token
def tokens(input, config, client, options)
  access_token = client.access_token!(:basic, **options)
  claims = verified_claims(config, access_token.id_token, client_id: client.identifier, nonce: input[:nonce])
  {
    id_token: access_token.id_token,
    id_token_claims: claims,
    userinfo: access_token.userinfo!.raw_attributes,
    access_token: access_token.access_token,
    refresh_token: access_token.refresh_token,
    scope: access_token.scope
  }
end

def run(input)
  config = discover(input)
  case input.fetch(:cmd)
  when 'discover'
    config.raw
  when 'authorize'
    params = { scope: input[:scope], state: input[:state], nonce: input[:nonce], prompt: input[:prompt] }.compact
    { url: client_for(input, config).authorization_uri(**params, **input.fetch(:extra, {})) }
  when 'exchange'
    client = client_for(input, config)
    client.authorization_code = input.fetch(:code)
    tokens(input, config, client, input[:code_verifier] ? { code_verifier: input[:code_verifier] } : {})
  when 'refresh'
    client = client_for(input, config)
    client.refresh_token = input.fetch(:refresh_token)
    tokens(input, config, client, {})
  when 'verify'
    { id_token_claims: verified_claims(config, input.fetch(:id_token), client_id: input.fetch(:client_id), nonce: input[:nonce]) }
  when 'logout_url'
    query = { id_token_hint: input.fetch(:id_token), post_logout_redirect_uri: input.fetch(:post_logout_redirect_uri), state: input[:state] }.compact
    { url: "#{config.end_session_endpoint}?#{query.to_query}" }
  else
    raise ArgumentError, "unknown cmd #{input[:cmd]}"
  end
end

def answer(line)
  run(JSON.parse(line, symbolize_names: true))
rescue StandardError => e
  { error: e.class.name, message: e.message, status: e.respond_to?(:status) ? e.status : nil }
end

$stdout.sync = true
$stdin.each_line do |line|
  puts JSON.generate(missing ? { error: 'LoadError', message: missing } : answer(line))
end
