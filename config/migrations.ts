// Versioned schema migrations of the catalog database (schema "pgtide"); applied in order, once each.

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

/**
 * Append-only: a released migration is never edited, a change is a new entry. Hash bounds are
 * numeric because the exclusive upper bound of the last partition, 2^63, does not fit in int8.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'shards, key spaces, tables, partitions, routing versions',
    sql: `
      CREATE TABLE pgtide.shards (
        id         int PRIMARY KEY,
        url        text NOT NULL,
        state      text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining', 'down', 'removed')),
        added_at   timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE pgtide.keyspaces (
        id         serial PRIMARY KEY,
        name       text NOT NULL UNIQUE,
        family     text NOT NULL CHECK (family IN ('int', 'text', 'uuid'))
      );
      CREATE TABLE pgtide.tables (
        name        text PRIMARY KEY,
        kind        text NOT NULL CHECK (kind IN ('sharded', 'reference')),
        key_column  text,
        key_type    text,
        keyspace_id int REFERENCES pgtide.keyspaces(id),
        created_at  timestamptz NOT NULL DEFAULT now(),
        CHECK ((kind = 'sharded') = (key_column IS NOT NULL AND key_type IS NOT NULL AND keyspace_id IS NOT NULL))
      );
      CREATE TABLE pgtide.partitions (
        id          serial PRIMARY KEY,
        keyspace_id int NOT NULL REFERENCES pgtide.keyspaces(id),
        lo          numeric(20, 0) NOT NULL,
        hi          numeric(20, 0) NOT NULL,
        shard_id    int NOT NULL REFERENCES pgtide.shards(id),
        state       text NOT NULL DEFAULT 'active',
        CHECK (lo < hi)
      );
      CREATE INDEX ON pgtide.partitions (keyspace_id, lo);
      CREATE TABLE pgtide.routing_state (
        singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        version    bigint NOT NULL
      );
      INSERT INTO pgtide.routing_state (version) VALUES (1);
      CREATE TABLE pgtide.routing_versions (
        version    bigint PRIMARY KEY,
        reason     text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      INSERT INTO pgtide.routing_versions (version, reason) VALUES (1, 'catalog created');
    `,
  },
];
