// Tests md5 password authentication against node-postgres's own md5 computation and stored-hash forms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { isMd5Hash, makeMd5Salt, md5PasswordHash, md5Response, verifyMd5Response } from '../../../proxy/auth/md5.js';

const require = createRequire(import.meta.url);
const pgCrypto = require('pg/lib/crypto/utils.js') as { postgresMd5PasswordHash(user: string, password: string, salt: Buffer): Promise<string> };

test('md5Response equals what node-postgres sends', async () => {
  const salt = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
  assert.equal(md5Response('s3cret', 'alice', salt), await pgCrypto.postgresMd5PasswordHash('alice', 's3cret', salt));
  const salt2 = makeMd5Salt();
  assert.equal(salt2.length, 4);
  assert.equal(md5Response('pä55', 'bøb', salt2), await pgCrypto.postgresMd5PasswordHash('bøb', 'pä55', salt2));
});

test('the stored hash is md5(password + user) and works in place of the password', () => {
  // md5('postgrespostgres'), a widely published value
  assert.equal(md5PasswordHash('postgres', 'postgres'), 'md53175bce1d3201d16594cebf9d7eb3f9d');
  const stored = md5PasswordHash('pw', 'u');
  assert.ok(isMd5Hash(stored));
  assert.ok(!isMd5Hash('pw'));
  const salt = Buffer.from([1, 2, 3, 4]);
  assert.equal(md5Response(stored, 'u', salt), md5Response('pw', 'u', salt));
});

test('verifyMd5Response accepts the right answer against plaintext or hash, and refuses others', () => {
  const salt = Buffer.from([9, 9, 9, 9]);
  const answer = md5Response('pw', 'u', salt);
  assert.ok(verifyMd5Response(answer, 'pw', 'u', salt));
  assert.ok(verifyMd5Response(answer, md5PasswordHash('pw', 'u'), 'u', salt));
  assert.ok(!verifyMd5Response(answer, 'pw', 'other', salt), 'the user name is salted in');
  assert.ok(!verifyMd5Response(answer, 'pw', 'u', Buffer.from([9, 9, 9, 8])));
  assert.ok(!verifyMd5Response(md5Response('pw2', 'u', salt), 'pw', 'u', salt));
  assert.ok(!verifyMd5Response('md5', 'pw', 'u', salt));
  assert.ok(!verifyMd5Response('', 'pw', 'u', salt));
});
