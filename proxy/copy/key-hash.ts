// Shard of one COPY key value (text form or binary field bytes) under a routing version.
import { hashBytesParts, hashKeyParts, KeyValueError, type HashParts } from '../../config/hash.js';
import type { RoutingIndex } from '../../config/routing.js';
import type { TableInfo } from '../../config/types.js';

export interface KeyRouter {
  shardOfText(key: string | null): number;
  shardOfBinary(key: Buffer | null): number;
}

const WIDTH = { int2: 2, int4: 4, int8: 8 } as const;
const TYPE_NAME = { int2: 'smallint', int4: 'integer', int8: 'bigint' } as const;

/** Routing functions for a sharded table's keys; NULL keys go to the primary shard (as INSERT does). */
export function keyRouter(index: RoutingIndex, table: TableInfo): KeyRouter {
  const keyType = table.keyType!;
  const ks = table.keyspaceId!;
  const slot: HashParts = { hi: 0, lo: 0 };
  const shardOf = (h: HashParts) => index.partitionForParts(ks, h.hi, h.lo).shardId;
  return {
    shardOfText(key) {
      if (key === null) return index.primaryShardId;
      return shardOf(hashKeyParts(keyType, key, slot));
    },
    shardOfBinary(key) {
      if (key === null) return index.primaryShardId;
      switch (keyType) {
        case 'int2':
        case 'int4':
        case 'int8': {
          // The binary field has the column's own width; int2/int4/int8 hash alike.
          if (key.length !== WIDTH[keyType]) throw new KeyValueError('22P02', `incorrect binary data format: ${key.length} bytes for a ${TYPE_NAME[keyType]} key`);
          const v = key.length === 2 ? key.readInt16BE(0) : key.length === 4 ? key.readInt32BE(0) : key.readBigInt64BE(0);
          return shardOf(hashKeyParts('int8', typeof v === 'bigint' && Number.isSafeInteger(Number(v)) ? Number(v) : v, slot));
        }
        case 'uuid':
          if (key.length !== 16) throw new KeyValueError('22P02', `incorrect binary data format: ${key.length} bytes for a uuid key`);
          return shardOf(hashBytesParts(key, slot));
        default:
          // text/varchar travel as their UTF-8 bytes, which is what the text hash reads.
          return shardOf(hashBytesParts(key, slot));
      }
    },
  };
}
