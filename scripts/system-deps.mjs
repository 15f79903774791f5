// The tests use a real redis-server (and redis-cli for the Redis Cluster tests), a real Chromium,
// a real Apache with mod_auth_openidc (a certified RP nobody here wrote) and mod_oauth2 (a resource server), Glewlwyd and LemonLDAP::NG (certified OPs),
// and Ruby's openid_connect gem and Python's Authlib (RP libraries nobody here wrote). Find them, or install them with apt-get
// where we can (Debian, root), or stop with a message that says what to install.
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const needs = [
  { what: 'redis-server', paths: ['/usr/bin/redis-server'], pkg: 'redis-server' },
  { what: 'redis-cli', paths: ['/usr/bin/redis-cli'], pkg: 'redis-tools' },
  { what: 'Chromium', paths: ['/usr/bin/chromium', '/usr/lib/chromium/chromium'], pkg: 'chromium' },
  { what: 'Apache', paths: ['/usr/sbin/apache2'], pkg: 'apache2' },
  { what: 'mod_auth_openidc', paths: ['/usr/lib/apache2/modules/mod_auth_openidc.so'], pkg: 'libapache2-mod-auth-openidc' },
  { what: 'mod_oauth2', paths: ['/usr/lib/apache2/modules/mod_oauth2.so'], pkg: 'libapache2-mod-oauth2' },
  // the https OP of test/interop/mod-auth-openidc-more.test.ts (WebFinger) gets its certificate from the openssl CLI
  { what: 'openssl', paths: ['/usr/bin/openssl'], pkg: 'openssl' },
  // test/interop: a certified OP (Glewlwyd) for the RP, and two more RP libraries (Ruby, Python) for the OP
  { what: 'Glewlwyd', paths: ['/usr/bin/glewlwyd'], pkg: 'glewlwyd' },
  { what: 'LemonLDAP::NG', paths: ['/usr/share/lemonldap-ng/portal/htdocs/index.psgi'], pkg: 'lemonldap-ng' },
  { what: 'plackup (for the LemonLDAP::NG portal)', paths: ['/usr/bin/plackup'], pkg: 'lemonldap-ng-fastcgi-server' },
  { what: "Ruby's openid_connect gem", paths: ['/usr/share/doc/ruby-openid-connect'], pkg: 'ruby-openid-connect' },
  { what: 'Authlib (Python)', paths: ['/usr/lib/python3/dist-packages/authlib/__init__.py'], pkg: 'python3-authlib' },
  { what: 'requests (Python)', paths: ['/usr/lib/python3/dist-packages/requests/__init__.py'], pkg: 'python3-requests' },
];

const has = (n) => n.paths.some((p) => existsSync(p));

export function ensureSystemDependencies() {
  const missing = needs.filter((n) => !has(n));
  if (missing.length === 0) return;
  const pkgs = missing.map((n) => n.pkg).join(' ');
  const canApt = existsSync('/usr/bin/apt-get') && process.getuid?.() === 0;
  if (!canApt) {
    console.error(
      `The tests need ${missing.map((n) => n.what).join(' and ')}, which this machine lacks.\n` +
        `Install them (Debian/Ubuntu: sudo apt-get install -y ${pkgs}) and run npm test again.`,
    );
    process.exit(1);
  }
  console.log(`Installing ${pkgs} with apt-get (needed by the tests)...`);
  execSync('apt-get update -qq', { stdio: 'inherit' });
  execSync(`DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkgs}`, { stdio: 'inherit' });
  const still = missing.filter((n) => !has(n));
  if (still.length) {
    console.error(`apt-get did not provide ${still.map((n) => n.what).join(', ')}.`);
    process.exit(1);
  }
}
