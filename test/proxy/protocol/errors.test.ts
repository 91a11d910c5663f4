// Tests PgtideError and its conversion to ErrorResponse fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PgtideError, ProtocolError, toErrorFields } from '../../../proxy/protocol/index.js';
import { PgtideError as ConfigPgtideError } from '../../../config/errors.js';

test('ProtocolError is a FATAL 08P01 PgtideError with a stable code', () => {
  const e = new ProtocolError('bad length', { detail: 'd' });
  assert.ok(e instanceof PgtideError);
  assert.ok(e instanceof ConfigPgtideError, 'one base class across areas');
  assert.equal(e.code, 'PROTOCOL_VIOLATION');
  assert.equal(e.sqlstate, '08P01');
  assert.equal(e.name, 'ProtocolError');
  assert.deepEqual(toErrorFields(e), { severity: 'FATAL', code: '08P01', message: 'bad length', detail: 'd' });
});

test('subclasses keep their own sqlstate and hints', () => {
  class RouteError extends PgtideError {}
  const e = new RouteError('NO_SHARD', 'no shard for key', { sqlstate: '0A000', hint: 'add a WHERE clause' });
  assert.deepEqual(toErrorFields(e), { severity: 'ERROR', code: '0A000', message: 'no shard for key', hint: 'add a WHERE clause' });
});

test('unknown errors become internal errors (XX000) with their message', () => {
  assert.deepEqual(toErrorFields(new TypeError('oops')), { severity: 'ERROR', code: 'XX000', message: 'oops' });
  assert.deepEqual(toErrorFields('plain string'), { severity: 'ERROR', code: 'XX000', message: 'plain string' });
  assert.equal(toErrorFields(new Error('')).message, 'internal error');
});
