package dev.outbox.bench.relay;

import dev.outbox.testkit.PrivatePostgres;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.postgresql.PGConnection;

/**
 * What PostgreSQL spends per relayed message in three storage layouts, with no Kafka and no relay: the
 * relay's reads and fenced removals replayed by one connection over a backlog, on a private server of
 * its own (settings {@link #SERVER_SETTINGS}), and then the clean-up the layout needs (a {@code VACUUM},
 * or a {@code TRUNCATE}). The layouts, alternated within each round:
 *
 * <ul>
 *   <li>{@code rows}: {@code outbox_message} as the migrations create it; each batch is read through the
 *       {@code (shard, id)} index and deleted by id, fenced by the shard's lease, as the relay does;
 *   <li>{@code shard-partitions}: the same table list-partitioned by shard (one partition per shard),
 *       so that a shard's rows share heap pages; the same statements, each naming the shard's own
 *       partition (through the parent, a prepared statement's generic plan opens all 64);
 *   <li>{@code cursor-truncate}: rows are never deleted one by one; each batch advances a cursor kept
 *       in the shard's lease row (fenced by the same update), and the table is truncated once every
 *       shard has passed its rows. The floor of any design without per-row removal: the read, one
 *       cursor update per batch and the truncate, with the read's snapshot filter on a per-row
 *       transaction id.
 *   <li>{@code cursor-pairs}: the same, with the read of {@code docs/CURSOR-LAYOUT.md} ("Reading: pairs
 *       of snapshots"): the rows of transactions in progress at the pair's {@code prev} (taken before
 *       the backlog's transactions) looked up by transaction id through a {@code (shard, tx)} index, once
 *       per pair, then the later rows in id order; the cost of finding late commits without a per-row
 *       delete.
 * </ul>
 *
 * <p>Each drain is measured twice over: the one connection's backend on-CPU time ({@code
 * /proc/<pid>/schedstat}, nanoseconds) around each statement, split into read, removal and clean-up;
 * and the whole server's CPU (postmaster, its children alive and reaped: WAL writer, checkpointer,
 * background writer), and WAL bytes from {@code pg_current_wal_lsn()}. The backlog is loaded in
 * transactions of {@code --tx-rows} rows (row i on shard i mod 64, key {@code key-}(i mod 10,000),
 * 1,024-byte payload), then
 * {@code VACUUM ANALYZE}, then, in the "after a checkpoint" mode, a {@code CHECKPOINT}, so that the
 * first change of every heap page writes a full-page image, as for a backlog older than the last
 * checkpoint.
 *
 * <p>Options: {@code --rows N} (default 64000), {@code --batch N} (500), {@code --rounds N} (2), {@code
 * --tx-rows N} (50),
 * {@code --layouts a,b} (all four), {@code --setting name=value} (a server setting added to or
 * replacing {@link #SERVER_SETTINGS}; repeatable), {@code --out FILE}. See {@code benchmarks/RELAY.md}, "Storage
 * layouts".
 */
public final class StorageLayouts {
    static final int SHARDS = 64;
    static final Map<String, String> SERVER_SETTINGS = Map.of(
            "fsync", "on",
            "synchronous_commit", "on",
            "full_page_writes", "on",
            "shared_buffers", "128MB",
            "max_wal_size", "4GB",
            "autovacuum", "off",
            "jit", "off",
            "max_parallel_maintenance_workers", "0");
    private static final String OWNER = "bench-relay";

    private final Report report = new Report();
    /** Rows per transaction of the backlog's load ({@code --tx-rows}). */
    private int perTransaction = 50;

    private final Connection c;
    private final long backendPid;
    private final long postmasterPid;

    private StorageLayouts(Connection c, long postmasterPid) throws SQLException {
        this.c = c;
        this.postmasterPid = postmasterPid;
        // every statement server-side prepared from its first use, as in a relay that has run a while
        c.unwrap(PGConnection.class).setPrepareThreshold(1);
        try (Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select pg_backend_pid()")) {
            rs.next();
            this.backendPid = rs.getLong(1);
        }
    }

    /** One layout: its tables, its read, its removal of a read batch and its clean-up after the drain. */
    enum Layout {
        ROWS("rows"),
        SHARD_PARTITIONS("shard-partitions"),
        CURSOR_TRUNCATE("cursor-truncate"),
        CURSOR_PAIRS("cursor-pairs");

        final String label;

        Layout(String label) {
            this.label = label;
        }

        static Layout of(String label) {
            for (Layout l : values()) {
                if (l.label.equals(label)) {
                    return l;
                }
            }
            throw new IllegalArgumentException("unknown layout '" + label
                    + "'; the layouts are rows, shard-partitions, cursor-truncate and" + " cursor-pairs");
        }

        /**
         * @return the table the statements for {@code shard} name: the shard's own partition in the
         *     partitioned layout, so that each statement's plan touches one partition
         */
        String table(int shard) {
            return this == SHARD_PARTITIONS ? "layout_bench.outbox_message_" + shard : "layout_bench.outbox_message";
        }

        boolean deletesRows() {
            return this != CURSOR_TRUNCATE && this != CURSOR_PAIRS;
        }
    }

    public static void main(String[] args) throws Exception {
        int rows = 64_000;
        int batch = 500;
        int rounds = 2;
        int txRows = 50;
        List<Layout> layouts = List.of(Layout.values());
        Path out = null;
        Map<String, String> settings = new TreeMap<>(SERVER_SETTINGS);
        for (int i = 0; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--rows" -> rows = RelayOptions.positiveValue("--rows", value);
                case "--batch" -> batch = RelayOptions.positiveValue("--batch", value);
                case "--rounds" -> rounds = RelayOptions.positiveValue("--rounds", value);
                case "--tx-rows" -> txRows = RelayOptions.positiveValue("--tx-rows", value);
                case "--layouts" ->
                    layouts = Arrays.stream(
                                    RelayOptions.required("--layouts", value).split(","))
                            .map(Layout::of)
                            .toList();
                case "--out" -> out = Path.of(RelayOptions.required("--out", value));
                case "--setting" -> {
                    String[] kv = RelayOptions.required("--setting", value).split("=", 2);
                    if (kv.length != 2) {
                        throw new IllegalArgumentException("--setting needs name=value, got '" + value + "'");
                    }
                    settings.put(kv[0], kv[1]);
                }
                default ->
                    throw new IllegalArgumentException("unknown option '" + args[i]
                            + "'; the options are --rows N, --batch N, --rounds N, --tx-rows N, --layouts a,b,"
                            + " --setting name=value,"
                            + " --out FILE");
            }
            i++;
        }
        Report.quietLogs();
        try (PrivatePostgres pg = PrivatePostgres.start(settings);
                Connection c = pg.server().connectAdmin()) {
            StorageLayouts bench = new StorageLayouts(c, DebeziumComparison.postmasterPid(pg));
            bench.perTransaction = txRows;
            bench.run(rows, batch, rounds, layouts, settings);
            bench.report.write(out);
        }
    }

    private void run(int rows, int batch, int rounds, List<Layout> layouts, Map<String, String> settings)
            throws Exception {
        report.line("# storage layouts, " + Instant.now() + ", " + rows + " rows of 1,024 B over "
                + SHARDS + " shards, loaded in transactions of " + perTransaction + " rows, batch " + batch
                + ", private PostgreSQL " + serverVersion() + " with "
                + settings);
        report.line("# us of PostgreSQL CPU per message: backend read / removal / clean-up = backend total;"
                + " whole server; WAL bytes per message");
        for (int round = 1; round <= rounds; round++) {
            for (boolean checkpoint : new boolean[] {round % 2 == 1, round % 2 == 0}) {
                // the order of the layouts turns every round, so none is always first
                for (int i = 0; i < layouts.size(); i++) {
                    Layout layout = layouts.get((i + round - 1) % layouts.size());
                    report.line(String.format(
                            Locale.ROOT,
                            "round %d, %-22s %-17s %s",
                            round,
                            checkpoint ? "after a checkpoint," : "no checkpoint between,",
                            layout.label,
                            drain(layout, rows, batch, checkpoint)));
                }
            }
        }
    }

    private String drain(Layout layout, int rows, int batch, boolean checkpoint) throws Exception {
        c.setAutoCommit(true);
        create(layout);
        // the pair's prev, taken before the backlog's transaction: the cursor a relay holds when a backlog forms
        Pair prev = layout == Layout.CURSOR_PAIRS ? prevSnapshot() : null;
        load(rows, perTransaction);
        execute("vacuum analyze layout_bench.outbox_message");
        if (checkpoint) {
            execute("checkpoint");
        }
        Report.progress("%s: %d rows loaded, draining (load average %s)", layout.label, rows, Report.loadAverage());
        String snapshot = query("select pg_current_snapshot()::text");
        long wal0 = walLsn();
        double server0 = Cpu.instanceCpuSeconds(postmasterPid);
        long readNs = 0;
        long removeNs = 0;
        long drained = 0;
        Map<String, PreparedStatement> statements = new HashMap<>();
        try {
            long[] cursor = new long[SHARDS];
            boolean[] empty = new boolean[SHARDS];
            boolean[] stragglersRead = new boolean[SHARDS];
            int left = SHARDS;
            for (int shard = 0; left > 0; shard = (shard + 1) % SHARDS) {
                if (empty[shard]) {
                    continue;
                }
                long t0 = backendNanos();
                String table = layout.table(shard);
                if (layout == Layout.CURSOR_PAIRS && !stragglersRead[shard]) {
                    int stragglers = stragglers(
                            statements.computeIfAbsent(stragglersSql(table), this::prepare),
                            shard,
                            snapshot,
                            prev,
                            batch);
                    if (stragglers != 0) { // every row of the backlog was written after prev was taken
                        throw new IllegalStateException(stragglers + " rows in phase 1 of shard " + shard);
                    }
                    stragglersRead[shard] = true;
                }
                List<Long> ids = read(
                        statements.computeIfAbsent(readSql(layout, table), this::prepare),
                        layout,
                        shard,
                        cursor[shard],
                        snapshot,
                        prev,
                        batch);
                long t1 = backendNanos();
                readNs += t1 - t0;
                if (ids.isEmpty()) {
                    empty[shard] = true;
                    left--;
                    continue;
                }
                cursor[shard] = ids.get(ids.size() - 1);
                remove(
                        statements.computeIfAbsent(removeSql(layout, table), this::prepare),
                        layout,
                        shard,
                        ids,
                        snapshot);
                removeNs += backendNanos() - t1;
                drained += ids.size();
            }
        } finally {
            for (PreparedStatement st : statements.values()) {
                st.close();
            }
        }
        if (drained != rows) {
            throw new IllegalStateException(layout.label + " drained " + drained + " of " + rows + " rows");
        }
        long t2 = backendNanos();
        execute(layout.deletesRows() ? "vacuum layout_bench.outbox_message" : "truncate layout_bench.outbox_message");
        long cleanNs = backendNanos() - t2;
        double server = Cpu.instanceCpuSeconds(postmasterPid) - server0;
        long wal = walLsn() - wal0;
        double n = drained;
        return String.format(
                Locale.ROOT,
                "%5.2f / %5.2f / %5.2f = %5.2f us; server %5.2f us; WAL %,6.0f B",
                readNs / 1e3 / n,
                removeNs / 1e3 / n,
                cleanNs / 1e3 / n,
                (readNs + removeNs + cleanNs) / 1e3 / n,
                server * 1e6 / n,
                wal / n);
    }

    private void create(Layout layout) throws SQLException {
        List<String> ddl = new ArrayList<>(List.of(
                "drop schema if exists layout_bench cascade",
                "create schema layout_bench",
                "create table layout_bench.outbox_shard_lease (shard int primary key, owner text, epoch bigint not null,"
                        + " lease_until timestamptz, cursor_id bigint not null default 0, cursor_snapshot text)",
                "insert into layout_bench.outbox_shard_lease (shard, owner, epoch, lease_until)"
                        + " select s, '" + OWNER + "', 1, now() + interval '1 day' from generate_series(0, "
                        + (SHARDS - 1) + ") s"));
        String columns = "id bigint generated always as identity, message_id uuid not null, shard int not null,"
                + " topic text not null, message_key text, message_type text not null, content_type text not null,"
                + " headers jsonb not null default '{}', payload bytea,"
                + " created_at timestamptz not null default clock_timestamp(), attempts int not null default 0,"
                + " last_error text, parked_at timestamptz,"
                + " constraint outbox_message_shard_check check (shard >= 0),"
                + " constraint outbox_message_attempts_check check (attempts >= 0),"
                + " constraint outbox_message_topic_check check (length(topic) > 0),"
                + " constraint outbox_message_shard_range check (shard < " + SHARDS + ")";
        String storage = "autovacuum_enabled = false, fillfactor = 90";
        String table = "create table layout_bench.outbox_message (" + columns + ", ";
        String unpublished = layout.deletesRows() ? " where parked_at is null" : "";
        switch (layout) {
            case ROWS ->
                ddl.add(table + "constraint outbox_message_pkey primary key (id),"
                        + " constraint outbox_message_message_id_key unique (message_id)) with (" + storage + ")");
            case SHARD_PARTITIONS -> {
                // a unique index of a partitioned table must contain the partition key: message_id's
                // uniqueness holds per shard only in this layout
                ddl.add(table + "constraint outbox_message_pkey primary key (shard, id)) partition by list (shard)");
                for (int s = 0; s < SHARDS; s++) {
                    ddl.add("create table layout_bench.outbox_message_" + s
                            + " partition of layout_bench.outbox_message for values in (" + s + ") with ("
                            + storage + ")");
                }
            }
            case CURSOR_TRUNCATE, CURSOR_PAIRS ->
                ddl.add(table + "tx xid8 not null default pg_current_xact_id(),"
                        + " constraint outbox_message_message_id_key unique (message_id)) with (" + storage + ")");
        }
        // the read's index (over every row in the cursor layout, where no row is parked in place), and
        // the parked rows' index that the read's hold on parked keys asks, in every layout
        ddl.add("create index on layout_bench.outbox_message (shard, id)" + unpublished);
        ddl.add("create index on layout_bench.outbox_message (shard, id) where parked_at is not null");
        if (layout == Layout.CURSOR_PAIRS) { // the pair read's lookup of transactions in progress at prev
            ddl.add("create index on layout_bench.outbox_message (shard, tx)");
        }
        for (String s : ddl) {
            execute(s);
        }
    }

    /** The backlog, in transactions of {@code perTransaction} rows, as producers append it. */
    private void load(int rows, int perTransaction) throws SQLException {
        for (int first = 1; first <= rows; first += perTransaction) {
            execute("insert into layout_bench.outbox_message (message_id, shard, topic, message_key, message_type,"
                    + " content_type, payload)"
                    + " select gen_random_uuid(), i % " + SHARDS + ", 'bench', 'key-' || (i % 10000), 'BenchPayload',"
                    + " 'application/octet-stream', decode(repeat(md5(i::text), 64), 'hex')"
                    + " from generate_series(" + first + ", " + Math.min(rows, first + perTransaction - 1) + ") i");
        }
    }

    /** The relay's read: the columns it publishes, a shard's publishable rows in id order, parked keys held. */
    private static String readSql(Layout layout, String m) {
        String select = "select m.id, m.message_id, m.topic, m.message_key, m.message_type, m.content_type,"
                + " m.headers::text, m.payload, m.created_at from " + m + " m where m.shard = ?";
        String hold = " and (m.message_key is null or not exists (select 1 from " + m
                + " p0 where p0.shard = ? and p0.parked_at is not null) or not exists (select 1 from " + m
                + " p where p.shard = m.shard and p.parked_at is not null and p.message_key = m.message_key"
                + " and p.id < m.id))";
        if (layout == Layout.CURSOR_PAIRS) {
            // docs/CURSOR-LAYOUT.md, "Reading: pairs of snapshots", phase 2: the rows drawn after prev_seq, visible
            // in cur and not in prev, in id order through (shard, id)
            return select + " and m.id > greatest(?, ?) and pg_visible_in_snapshot(m.tx, ?::pg_snapshot)"
                    + " and not pg_visible_in_snapshot(m.tx, ?::pg_snapshot)" + hold + " order by m.id limit ?";
        }
        return layout.deletesRows()
                ? select + " and m.parked_at is null" + hold + " order by m.id limit ?"
                : select + " and m.id > ? and pg_visible_in_snapshot(m.tx, ?::pg_snapshot)" + hold
                        + " order by m.id limit ?";
    }

    /**
     * Phase 1 of a pair in the {@code cursor-pairs} layout: the rows of transactions in progress at prev that
     * drew their ids before prev_seq, by transaction id through {@code (shard, tx)} ({@code id + 0} keeps the
     * planner off the walk of every older row through {@code (shard, id)}).
     */
    private static String stragglersSql(String m) {
        String select = "select m.id, m.message_id, m.topic, m.message_key, m.message_type, m.content_type,"
                + " m.headers::text, m.payload, m.created_at from " + m + " m where m.shard = ?";
        return "select * from ((" + select + " and m.tx = any(?::xid8[]) and pg_visible_in_snapshot(m.tx,"
                + " ?::pg_snapshot)) union all (" + select + " and m.tx >= ?::xid8 and m.tx < ?::xid8"
                + " and pg_visible_in_snapshot(m.tx, ?::pg_snapshot))) s where s.id + 0 <= ? and s.id + 0 > ?"
                + " order by s.id limit ?";
    }

    /** The removal of a read batch, fenced by the shard's lease: a delete by id, or the cursor's update. */
    private static String removeSql(Layout layout, String table) {
        String lease = "layout_bench.outbox_shard_lease";
        return layout.deletesRows()
                ? "with l as (select x.shard from " + lease + " x where x.shard = ? and x.owner = ? and x.epoch = ?"
                        + " and x.lease_until > now() for share of x)"
                        + " delete from " + table + " m where m.id = any(?::bigint[])"
                        + " and m.shard = any(array(select l.shard from l))"
                : "update " + lease + " x set cursor_id = ?, cursor_snapshot = ? where x.shard = ? and x.owner = ?"
                        + " and x.epoch = ? and x.lease_until > now()";
    }

    private static List<Long> read(
            PreparedStatement read, Layout layout, int shard, long cursor, String snapshot, Pair prev, int batch)
            throws SQLException {
        int p = 1;
        read.setInt(p++, shard);
        if (layout == Layout.CURSOR_PAIRS) {
            read.setLong(p++, cursor);
            read.setLong(p++, prev.seq());
            read.setString(p++, snapshot);
            read.setString(p++, prev.snapshot());
            read.setInt(p++, shard); // the hold's
        } else if (!layout.deletesRows()) {
            read.setLong(p++, cursor);
            read.setString(p++, snapshot);
        }
        if (layout != Layout.CURSOR_PAIRS) {
            read.setInt(p++, shard);
        }
        read.setInt(p, batch);
        List<Long> ids = new ArrayList<>(batch);
        long bytes = 0;
        try (ResultSet rs = read.executeQuery()) {
            while (rs.next()) {
                ids.add(rs.getLong(1));
                rs.getObject(2);
                rs.getString(3);
                rs.getString(4);
                rs.getString(7);
                bytes += rs.getBytes(8).length;
                rs.getTimestamp(9);
            }
        }
        if (bytes != 1024L * ids.size()) {
            throw new IllegalStateException("read " + bytes + " payload bytes for " + ids.size() + " rows");
        }
        return ids;
    }

    private int stragglers(PreparedStatement read, int shard, String snapshot, Pair prev, int batch)
            throws SQLException {
        String[] parts = prev.snapshot().split(":", -1); // xmin:xmax:xip,...
        int p = 1;
        read.setInt(p++, shard);
        read.setArray(p++, c.createArrayOf("text", parts[2].isEmpty() ? new String[0] : parts[2].split(",")));
        read.setString(p++, snapshot);
        read.setInt(p++, shard);
        read.setString(p++, parts[1]);
        read.setString(p++, prev.xid());
        read.setString(p++, snapshot);
        read.setLong(p++, prev.seq());
        read.setLong(p++, 0);
        read.setInt(p, batch);
        int n = 0;
        try (ResultSet rs = read.executeQuery()) {
            while (rs.next()) {
                n++;
            }
        }
        return n;
    }

    private void remove(PreparedStatement remove, Layout layout, int shard, List<Long> ids, String snapshot)
            throws SQLException {
        if (layout.deletesRows()) {
            remove.setInt(1, shard);
            remove.setString(2, OWNER);
            remove.setLong(3, 1);
            remove.setArray(4, c.createArrayOf("bigint", ids.toArray()));
        } else {
            remove.setLong(1, ids.get(ids.size() - 1));
            remove.setString(2, snapshot);
            remove.setInt(3, shard);
            remove.setString(4, OWNER);
            remove.setLong(5, 1);
        }
        int changed = remove.executeUpdate();
        int expected = layout.deletesRows() ? ids.size() : 1;
        if (changed != expected) {
            throw new IllegalStateException(layout.label + " removal changed " + changed + " rows of shard " + shard
                    + ", expected " + expected);
        }
    }

    /** A pair's prev: its snapshot, a transaction id assigned after it, and the id sequence's position before it. */
    private record Pair(String snapshot, String xid, long seq) {}

    private Pair prevSnapshot() throws SQLException {
        long seq = Long.parseLong(query("select coalesce(max(id), 0) from layout_bench.outbox_message"));
        try (Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select pg_current_snapshot()::text, pg_current_xact_id()::text")) {
            rs.next();
            return new Pair(rs.getString(1), rs.getString(2), seq);
        }
    }

    private PreparedStatement prepare(String sql) {
        try {
            return c.prepareStatement(sql);
        } catch (SQLException e) {
            throw new IllegalStateException("could not prepare " + sql, e);
        }
    }

    private long backendNanos() throws Exception {
        String s = Files.readString(Path.of("/proc/" + backendPid + "/schedstat"));
        return Long.parseLong(s.substring(0, s.indexOf(' ')));
    }

    private long walLsn() throws SQLException {
        return Long.parseLong(query("select pg_current_wal_lsn() - '0/0'"));
    }

    private String serverVersion() throws SQLException {
        return query("show server_version");
    }

    private String query(String sql) throws SQLException {
        try (Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getString(1);
        }
    }

    private void execute(String sql) throws SQLException {
        try (Statement st = c.createStatement()) {
            st.execute(sql);
        }
    }
}
