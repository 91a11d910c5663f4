// Tests SCRAM-SHA-256: the RFC 7677 vector on both sides, secrets, wrong passwords, and malformed or hostile messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ScramClientSession,
  ScramServerSession,
  makeScramSecret,
  parseScramSecret,
  saslprep,
  verifyScramPassword,
  isScramSecret,
} from '../../../proxy/auth/scram.js';
import { AuthenticationError } from '../../../proxy/auth/errors.js';
import { PgtideError, ProtocolError } from '../../../proxy/protocol/errors.js';

// RFC 7677 section 3
const RFC = {
  password: 'pencil',
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};
const RFC_SECRET = makeScramSecret(RFC.password, { salt: RFC.salt, iterations: 4096 });

const b = (s: string) => Buffer.from(s);

test('RFC 7677 vector: the server side produces server-first and server-final, and accepts the proof', () => {
  const server = new ScramServerSession(RFC_SECRET, { serverNonce: RFC.serverNonce });
  assert.equal(server.start(b(RFC.clientFirst)).toString(), RFC.serverFirst);
  const r = server.finish(b(RFC.clientFinal));
  assert.equal(r.ok, true);
  assert.equal(r.serverFinal?.toString(), RFC.serverFinal);
  assert.equal(r.clientKey?.length, 32);
});

test('RFC 7677 vector: the client side produces client-first and client-final, and checks server-final', () => {
  const client = new ScramClientSession(RFC.password, { clientNonce: RFC.clientNonce, username: 'user' });
  assert.equal(client.clientFirst().toString(), RFC.clientFirst);
  assert.equal(client.clientFinal(b(RFC.serverFirst)).toString(), RFC.clientFinal);
  assert.doesNotThrow(() => client.verifyServerFinal(b(RFC.serverFinal)));
  const forged = new ScramClientSession(RFC.password, { clientNonce: RFC.clientNonce, username: 'user' });
  forged.clientFinal(b(RFC.serverFirst));
  assert.throws(() => forged.verifyServerFinal(b('v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=')), AuthenticationError);
  assert.throws(() => forged.verifyServerFinal(b('e=invalid-proof')), (e: unknown) => e instanceof AuthenticationError && /invalid-proof/.test(e.message));
});

test('secrets: PG format, parse round-trip, cleartext check', () => {
  assert.match(RFC_SECRET, /^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
  assert.ok(isScramSecret(RFC_SECRET));
  const s = parseScramSecret(RFC_SECRET);
  assert.equal(s.iterations, 4096);
  assert.deepEqual(s.salt, RFC.salt);
  assert.equal(s.storedKey.length, 32);
  assert.ok(verifyScramPassword('pencil', RFC_SECRET));
  assert.ok(!verifyScramPassword('pencil2', RFC_SECRET));
  const fresh = makeScramSecret('pw', { iterations: 1000 });
  assert.notEqual(fresh, makeScramSecret('pw', { iterations: 1000 }), 'random salt');
  assert.ok(verifyScramPassword('pw', fresh));
  for (const bad of ['md5abc', 'SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA', 'SCRAM-SHA-256$x:c2FsdA==$a:b', RFC_SECRET.replace('$4096', '$0')]) {
    assert.throws(() => parseScramSecret(bad), (e: unknown) => e instanceof PgtideError && e.code === 'INVALID_SCRAM_SECRET', bad);
  }
});

function exchange(password: string, secret: string | null, gs2Flag: 'n' | 'y' = 'n'): { ok: boolean; client: ScramClientSession; serverFinal?: Buffer } {
  const server = new ScramServerSession(secret);
  const client = new ScramClientSession(password, { gs2Flag });
  const first = client.clientFirst();
  assert.equal(first[0], gs2Flag.charCodeAt(0));
  const final = client.clientFinal(server.start(first));
  assert.match(final.toString(), gs2Flag === 'y' ? /^c=eSws,/ : /^c=biws,/);
  const r = server.finish(final);
  return { ok: r.ok, client, ...(r.serverFinal ? { serverFinal: r.serverFinal } : {}) };
}

test('client and server agree with random nonces; the client verifies the server', () => {
  const secret = makeScramSecret('correct horse');
  const r = exchange('correct horse', secret);
  assert.equal(r.ok, true);
  assert.doesNotThrow(() => r.client.verifyServerFinal(r.serverFinal!));
});

test('a wrong password is ok: false, not an exception', () => {
  const r = exchange('wrong', makeScramSecret('correct horse'));
  assert.equal(r.ok, false);
  assert.equal(r.serverFinal, undefined);
});

test('an unknown user (null secret) runs the whole exchange and always fails', () => {
  assert.equal(exchange('anything', null).ok, false);
});

test("GS2 'y' (client could bind, thinks we cannot) is accepted since we do not offer -PLUS", () => {
  assert.equal(exchange('pw', makeScramSecret('pw'), 'y').ok, true);
});

test('non-ASCII passwords go through SASLprep on both sides', () => {
  assert.equal(saslprep('I\u00ADX'), 'IX');
  assert.equal(saslprep('\u2168'), 'IX');
  assert.equal(saslprep('a\u00A0b'), 'a b');
  assert.equal(saslprep('plain ascii\x07'), 'plain ascii\x07', 'ASCII is left alone, like PG');
  assert.equal(saslprep('é\u0007'), 'é\u0007', 'prohibited output: the raw password is used');
  const secret = makeScramSecret('\u2168');
  assert.ok(verifyScramPassword('IX', secret));
  assert.equal(exchange('I\u00ADX', secret).ok, true);
});

test('malformed client-first messages are ProtocolErrors (08P01); authzid is 0A000', () => {
  const secret = makeScramSecret('pw');
  const bad = [
    'p=tls-server-end-point,,n=,r=abc',
    'x,,n=,r=abc',
    'n,,r=abc',
    'n,,n=,r=',
    'n,,n=,r=a,b',
    'n,,m=ext,n=,r=abc',
    'n,,n=,r=ab\u0001c',
    'n',
    '',
    'n,,n=,r=' + 'a'.repeat(1100),
  ];
  for (const msg of bad) {
    assert.throws(() => new ScramServerSession(secret).start(b(msg)), (e: unknown) => e instanceof ProtocolError && e.sqlstate === '08P01', JSON.stringify(msg.slice(0, 40)));
  }
  assert.throws(() => new ScramServerSession(secret).start(Buffer.from([0x6e, 0x2c, 0x2c, 0xff, 0xfe])), ProtocolError);
  assert.throws(
    () => new ScramServerSession(secret).start(b('n,a=admin,n=,r=abc')),
    (e: unknown) => e instanceof PgtideError && e.sqlstate === '0A000',
  );
});

test('malformed client-final messages are ProtocolErrors; out-of-order calls too', () => {
  const secret = makeScramSecret('pw');
  const start = () => {
    const s = new ScramServerSession(secret, { serverNonce: 'SRV' });
    s.start(b('n,,n=,r=CLI'));
    return s;
  };
  const proof = Buffer.alloc(32).toString('base64');
  const bad = [
    `c=biws,r=CLISRV`,
    `c=biws,r=CLIXXX,p=${proof}`,
    `c=eSws,r=CLISRV,p=${proof}`,
    `c=bi!s,r=CLISRV,p=${proof}`,
    `r=CLISRV,c=biws,p=${proof}`,
    `c=biws,r=CLISRV,p=AAAA`,
    `c=biws,r=CLISRV,p=not base64!`,
  ];
  for (const msg of bad) assert.throws(() => start().finish(b(msg)), ProtocolError, msg);
  assert.throws(() => new ScramServerSession(secret).finish(b(`c=biws,r=x,p=${proof}`)), ProtocolError);
  const s = start();
  assert.throws(() => s.start(b('n,,n=,r=CLI')), ProtocolError);
  assert.equal(s.finish(b(`c=biws,r=CLISRV,p=${proof}`)).ok, false, 'a well-formed wrong proof is just ok: false');
  assert.throws(() => s.finish(b(`c=biws,r=CLISRV,p=${proof}`)), ProtocolError, 'no second try on the same session');
});

test('the client refuses a hostile server-first', () => {
  const mk = () => {
    const c = new ScramClientSession('pw', { clientNonce: 'CLI' });
    c.clientFirst();
    return c;
  };
  for (const msg of ['r=OTHER,s=c2FsdA==,i=4096', 'r=CLI,s=c2FsdA==,i=4096', 'r=CLIx,s=,i=4096', 'r=CLIx,s=c2FsdA==,i=0', 'r=CLIx,s=c2FsdA==,i=99999999', 'r=CLIx,s=c2FsdA==', 'm=x,r=CLIx,s=c2FsdA==,i=1']) {
    assert.throws(() => mk().clientFinal(b(msg)), ProtocolError, msg);
  }
  assert.throws(() => mk().verifyServerFinal(b('v=abc')), ProtocolError, 'server-final before server-first');
});

test('pass-through keys log in without the password when salt and iterations match', () => {
  const secret = makeScramSecret('pw', { iterations: 4096 });
  // a first exchange reveals the ClientKey to the server side, as in PgBouncer's pass-through
  const first = new ScramServerSession(secret);
  const c1 = new ScramClientSession('pw');
  const r1 = first.finish(c1.clientFinal(first.start(c1.clientFirst())));
  assert.ok(r1.ok && r1.clientKey);
  const serverKey = parseScramSecret(secret).serverKey;
  const second = new ScramServerSession(secret);
  const c2 = new ScramClientSession('', { keys: { clientKey: r1.clientKey, serverKey } });
  const r2 = second.finish(c2.clientFinal(second.start(c2.clientFirst())));
  assert.equal(r2.ok, true);
  assert.doesNotThrow(() => c2.verifyServerFinal(r2.serverFinal!));
});
