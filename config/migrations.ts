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
  {
    version: 2,
    description: 'proxies, users, load history, key samples, shard stats',
    sql: `
      CREATE TABLE pgtide.proxies (
        id              serial PRIMARY KEY,
        address         text NOT NULL,
        pid             int NOT NULL,
        started_at      timestamptz NOT NULL DEFAULT now(),
        last_heartbeat  timestamptz NOT NULL DEFAULT now(),
        routing_version bigint NOT NULL DEFAULT 0,
        state           text NOT NULL DEFAULT 'alive' CHECK (state IN ('alive', 'dead', 'stopped')),
        leader          boolean NOT NULL DEFAULT false
      );
      -- Proxies that join an existing cluster learn who may log in from here.
      CREATE TABLE pgtide.users (
        name      text PRIMARY KEY,
        secret    text NOT NULL,
        admin     boolean NOT NULL DEFAULT false
      );
      CREATE TABLE pgtide.load_history (
        bucket        timestamptz NOT NULL,
        proxy_id      int NOT NULL,
        partition_id  int NOT NULL,
        table_name    text NOT NULL,
        interval_s    int NOT NULL,
        reads         double precision NOT NULL DEFAULT 0,
        writes        double precision NOT NULL DEFAULT 0,
        rows          double precision NOT NULL DEFAULT 0,
        bytes_in      double precision NOT NULL DEFAULT 0,
        bytes_out     double precision NOT NULL DEFAULT 0,
        latency_us    double precision NOT NULL DEFAULT 0,
        max_latency_us double precision NOT NULL DEFAULT 0,
        errors        double precision NOT NULL DEFAULT 0,
        PRIMARY KEY (bucket, proxy_id, partition_id, table_name)
      );
      CREATE INDEX ON pgtide.load_history (partition_id, bucket);
      CREATE TABLE pgtide.key_samples (
        bucket      timestamptz NOT NULL,
        proxy_id    int NOT NULL,
        table_name  text NOT NULL,
        partition_id int NOT NULL,
        key_hash    numeric(20, 0) NOT NULL,
        key_text    text NOT NULL,
        weight      double precision NOT NULL
      );
      CREATE INDEX ON pgtide.key_samples (table_name, bucket);
      CREATE TABLE pgtide.shard_stats (
        at            timestamptz NOT NULL DEFAULT now(),
        shard_id      int NOT NULL,
        xact_commit   bigint,
        xact_rollback bigint,
        blks_read     bigint,
        blks_hit      bigint,
        tup_returned  bigint,
        tup_fetched   bigint,
        tup_inserted  bigint,
        tup_updated   bigint,
        tup_deleted   bigint,
        db_bytes      bigint,
        PRIMARY KEY (at, shard_id)
      );
      CREATE TABLE pgtide.partition_sizes (
        at           timestamptz NOT NULL DEFAULT now(),
        partition_id int NOT NULL,
        table_name   text NOT NULL,
        rows         bigint NOT NULL,
        bytes        bigint NOT NULL,
        PRIMARY KEY (at, partition_id, table_name)
      );
    `,
  },
  {
    version: 3,
    description: 'cluster settings (what a joining proxy needs to know)',
    sql: `
      CREATE TABLE pgtide.settings (
        key   text PRIMARY KEY,
        value text NOT NULL
      );
    `,
  },
  {
    version: 4,
    description: 'mover: jobs and job events',
    sql: `
      CREATE TABLE pgtide.jobs (
        id            serial PRIMARY KEY,
        kind          text NOT NULL DEFAULT 'move' CHECK (kind IN ('move')),
        partition_id  int NOT NULL,
        keyspace_id   int NOT NULL,
        lo            numeric(20, 0) NOT NULL,
        hi            numeric(20, 0) NOT NULL,
        source_shard  int NOT NULL,
        target_shard  int NOT NULL,
        state         text NOT NULL DEFAULT 'planned' CHECK (state IN ('planned', 'preparing', 'copying', 'catching_up', 'cutover',
                        'cleanup', 'done', 'failed', 'cancelled', 'rolled_back', 'paused')),
        paused_from   text,
        requested     text CHECK (requested IN ('pause', 'cancel')),
        reason        text,
        settings      jsonb NOT NULL DEFAULT '{}',
        progress      jsonb NOT NULL DEFAULT '{}',
        verification  jsonb,
        cutover       jsonb,
        error         text,
        created_at    timestamptz NOT NULL DEFAULT now(),
        updated_at    timestamptz NOT NULL DEFAULT now(),
        finished_at   timestamptz
      );
      -- One unfinished job per partition: a second MOVE of it fails with 23505, reported as 55006.
      CREATE UNIQUE INDEX jobs_one_active_per_partition ON pgtide.jobs (partition_id) WHERE state NOT IN ('done', 'rolled_back');
      CREATE TABLE pgtide.job_events (
        id          bigserial PRIMARY KEY,
        job_id      int NOT NULL REFERENCES pgtide.jobs(id),
        at          timestamptz NOT NULL DEFAULT clock_timestamp(),
        from_state  text,
        to_state    text NOT NULL,
        detail      text NOT NULL DEFAULT ''
      );
      CREATE INDEX ON pgtide.job_events (job_id, id);
    `,
  },
  {
    version: 5,
    description: 'autopilot: events, forecasts, models, plans, restore requests, overrides, actions, log',
    sql: `
      CREATE TABLE pgtide.events (
        id          serial PRIMARY KEY,
        name        text NOT NULL,
        start_at    timestamptz NOT NULL,
        duration_ms bigint NOT NULL CHECK (duration_ms > 0),
        table_name  text,
        multiplier  double precision,
        source      text NOT NULL DEFAULT 'admin',
        created_at  timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE pgtide.forecast_runs (
        id          bigserial PRIMARY KEY,
        at          timestamptz NOT NULL DEFAULT now(),
        step_s      int NOT NULL,
        horizon     int NOT NULL,
        series      int NOT NULL,
        ms          int NOT NULL,
        lstm        text,
        notes       jsonb NOT NULL DEFAULT '[]'
      );
      -- One row per run, partition and horizon step: the point forecast and its quantiles (load/s).
      CREATE TABLE pgtide.forecasts (
        run_id       bigint NOT NULL,
        partition_id int NOT NULL,
        step         int NOT NULL,
        t            timestamptz NOT NULL,
        mean         double precision NOT NULL,
        quantiles    jsonb NOT NULL,
        model        text NOT NULL,
        PRIMARY KEY (run_id, partition_id, step)
      );
      CREATE INDEX ON pgtide.forecasts (partition_id, t);
      CREATE TABLE pgtide.models (
        name          text PRIMARY KEY,
        trained_at    timestamptz NOT NULL DEFAULT now(),
        horizon       int NOT NULL,
        step_s        int NOT NULL,
        model         jsonb NOT NULL
      );
      CREATE TABLE pgtide.plans (
        id          text PRIMARY KEY,
        created_at  timestamptz NOT NULL DEFAULT now(),
        plan        jsonb NOT NULL,
        applied     int[] NOT NULL DEFAULT '{}'
      );
      CREATE TABLE pgtide.restore_requests (
        table_name  text PRIMARY KEY,
        shard_key   text NOT NULL,
        user_params jsonb NOT NULL,
        chosen      jsonb NOT NULL,
        pinned      text[] NOT NULL DEFAULT '{}',
        created_at  timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE pgtide.overrides (
        id           serial PRIMARY KEY,
        at           timestamptz NOT NULL DEFAULT now(),
        table_name   text NOT NULL,
        parameter    text NOT NULL,
        user_value   double precision,
        chosen_value double precision NOT NULL,
        pinned       boolean NOT NULL,
        reason       text NOT NULL
      );
      -- What the autopilot did (cooldowns and thrash checks read it back).
      CREATE TABLE pgtide.autopilot_actions (
        id           serial PRIMARY KEY,
        at           timestamptz NOT NULL DEFAULT now(),
        kind         text NOT NULL,
        partition_id int,
        lo           numeric(20, 0),
        hi           numeric(20, 0),
        at_hash      numeric(20, 0),
        from_shard   int,
        to_shard     int,
        plan_id      text,
        step         int,
        detail       text NOT NULL
      );
      -- Why the autopilot did not act (NaN forecasts, busy partitions, refused steps).
      CREATE TABLE pgtide.autopilot_log (
        id       serial PRIMARY KEY,
        at       timestamptz NOT NULL DEFAULT now(),
        level    text NOT NULL,
        message  text NOT NULL
      );
    `,
  },
  {
    version: 6,
    description: 'two-phase commit decisions',
    sql: `
      -- A row exists only once every shard of a distributed transaction PREPAREd and the
      -- coordinator decided to commit: recovery commits the prepared transactions it names and
      -- rolls back any pgtide-prepared transaction without a row.
      CREATE TABLE pgtide.twophase_decisions (
        gid        text PRIMARY KEY,
        proxy_id   int NOT NULL,
        shards     int[] NOT NULL,
        decided_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 7,
    description: 'shards: joining state (ADD SHARD), optional capacity max_bytes',
    sql: `
      -- A joining shard receives broadcasts (DDL, reference-table writes) but serves no reads
      -- until its reference tables are copied; max_bytes (NULL: unlimited) is what a move
      -- may fill it up to, checked against pg_database_size, since Postgres cannot see free disk.
      ALTER TABLE pgtide.shards DROP CONSTRAINT shards_state_check;
      ALTER TABLE pgtide.shards ADD CONSTRAINT shards_state_check CHECK (state IN ('active', 'draining', 'down', 'removed', 'joining'));
      ALTER TABLE pgtide.shards ADD COLUMN max_bytes bigint CHECK (max_bytes IS NULL OR max_bytes > 0);
    `,
  },
  {
    version: 8,
    description: 'autopilot actions: the other partition of a split or merge, and the split share (load history follows the range)',
    sql: `
      -- A split names its new right piece and the share of the load the left piece kept (key
      -- samples at the split); a merge names the partition it removed. The autopilot reads them to
      -- give each piece its share of the history from before the split, and the merged partition
      -- the removed one's history (autopilot/lineage.ts).
      ALTER TABLE pgtide.autopilot_actions ADD COLUMN other_partition_id int, ADD COLUMN share double precision;
    `,
  },
  {
    version: 9,
    description: 'cutover holds on every proxy: the held range and each proxy\'s acknowledgement',
    sql: `
      -- The range a cutover holds (one row per job; NOTIFY pgtide_holds tells the proxies at once,
      -- and they re-read this table on their poll in case they missed it). token names one attempt:
      -- an ack of an earlier, aborted attempt does not count. deadline bounds the hold on every
      -- proxy, so a mover that died holding does not wedge the cluster.
      CREATE TABLE pgtide.holds (
        job_id      int PRIMARY KEY,
        keyspace_id int NOT NULL,
        lo          numeric NOT NULL,
        hi          numeric NOT NULL,
        token       bigint NOT NULL,
        proxy_id    int NOT NULL,
        deadline    timestamptz NOT NULL
      );
      -- A proxy acks a hold once it holds the range and no transaction that touched it is open there.
      CREATE TABLE pgtide.hold_acks (
        job_id   int NOT NULL,
        proxy_id int NOT NULL,
        token    bigint NOT NULL,
        acked_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (job_id, proxy_id)
      );
    `,
  },
];
