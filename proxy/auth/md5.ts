// Postgres md5 password authentication: "md5" + md5hex(md5hex(password + user) + salt), both sides.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const MD5_HASH_RE = /^md5[0-9a-f]{32}$/;

function md5hex(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}

/** Whether a stored password is an md5 hash ("md5" + 32 hex digits) rather than plaintext. */
export function isMd5Hash(stored: string): boolean {
  return MD5_HASH_RE.test(stored);
}

/** The form PG stores in pg_authid.rolpassword: "md5" + md5hex(password + user). */
export function md5PasswordHash(password: string, user: string): string {
  return 'md5' + md5hex(password + user);
}

export function makeMd5Salt(): Buffer {
  return randomBytes(4);
}

/**
 * What a client sends after AuthenticationMD5Password. `passwordOrHash` may be the plaintext
 * password or the stored md5 hash: the hash is all the exchange needs.
 */
export function md5Response(passwordOrHash: string, user: string, salt: Buffer): string {
  const inner = isMd5Hash(passwordOrHash) ? passwordOrHash.slice(3) : md5hex(passwordOrHash + user);
  return 'md5' + md5hex(Buffer.concat([Buffer.from(inner, 'ascii'), salt]));
}

/** Server-side check of a client's md5 response against a plaintext password or a stored md5 hash, in constant time. */
export function verifyMd5Response(response: string, stored: string, user: string, salt: Buffer): boolean {
  const expected = Buffer.from(md5Response(stored, user, salt), 'utf8');
  const got = Buffer.from(response, 'utf8');
  return got.length === expected.length && timingSafeEqual(got, expected);
}
