package dev.outbox.relay.admin;

import static dev.outbox.core.internal.Durations.format;
import static dev.outbox.core.internal.Durations.roughly;
import static dev.outbox.relay.admin.Intervals.seconds;

import dev.outbox.relay.admin.Doctor.Check;
import dev.outbox.relay.admin.Doctor.Verdict;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The checks of the {@code outbox_message} table: {@code outbox-parked} (no parked rows wait for an
 * operator), {@code outbox-unpublished} (the oldest unpublished row is young enough) and {@code
 * outbox-index-size} (the indexes are not far larger than the rows in the table need).
 */
final class OutboxChecks {
    static final String PARKED_TITLE = "The outbox has no parked messages";
    static final String UNPUBLISHED_TITLE = "No outbox message stays unpublished for long";
    static final String INDEX_SIZE_TITLE = "The outbox table's indexes are not far larger than its rows need";

    /**
     * Index entries per page taken as the least a rebuilt index holds: the widest of the table's indexes
     * (the {@code message_id} uuid) packs about 260 per 8 KiB page, a little more than half as many
     * after random inserts split its pages.
     */
    static final int ENTRIES_PER_PAGE = 100;

    /** Index pages beyond what the rows need before the check warns: 16 MiB at the usual 8 KiB page. */
    static final long EXCESS_PAGES = 2_000;

    private final String schema;
    private final Duration maxUnpublishedAge;

    OutboxChecks(DoctorSettings settings) {
        this.schema = settings.schema();
        this.maxUnpublishedAge = settings.maxUnpublishedAge();
    }

    Check parked(Connection c) throws SQLException {
        String title = PARKED_TITLE;
        String sql =
                "select id, topic, message_key, attempts, last_error, extract(epoch from clock_timestamp() - parked_at) as age"
                        + " from " + schema + ".outbox_message where parked_at is not null order by id limit 6";
        List<String> evidence = new ArrayList<>();
        try (PreparedStatement st = c.prepareStatement(sql);
                ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
                evidence.add(
                        evidence.size() == 5
                                ? "..."
                                : "id " + rs.getLong("id") + " topic " + rs.getString("topic") + " key "
                                        + rs.getString("message_key") + ", parked "
                                        + format(roughly(seconds(rs.getDouble("age")))) + " ago after "
                                        + rs.getInt("attempts") + " attempt(s): " + rs.getString("last_error"));
            }
        }
        if (!evidence.isEmpty()) {
            return new Check(
                    "outbox-parked",
                    title,
                    Verdict.FAIL,
                    "parked messages are waiting for an operator",
                    evidence,
                    "See them with 'parked list'; fix the cause (topic missing, record too large, ACLs), then 'parked requeue',"
                            + " or 'parked purge' what must never be published.");
        }
        return new Check("outbox-parked", title, Verdict.PASS, "no parked messages", evidence, null);
    }

    /**
     * What the outbox table holds, read in one pass for the checks that need it.
     *
     * @param rows every row, parked ones included
     * @param unpublished the rows not parked
     * @param oldestSeconds the age of the oldest row not parked, 0 without any
     */
    record Rows(long rows, long unpublished, double oldestSeconds) {}

    Rows rows(Connection c) throws SQLException {
        String sql = "select count(*), count(*) filter (where parked_at is null),"
                + " extract(epoch from clock_timestamp() - min(created_at) filter (where parked_at is null))"
                + " from " + schema + ".outbox_message";
        try (PreparedStatement st = c.prepareStatement(sql);
                ResultSet rs = st.executeQuery()) {
            rs.next();
            return new Rows(rs.getLong(1), rs.getLong(2), rs.getDouble(3));
        }
    }

    Check unpublished(Rows counted) {
        String title = UNPUBLISHED_TITLE;
        long backlog = counted.unpublished();
        double oldest = counted.oldestSeconds();
        List<String> evidence = new ArrayList<>();
        evidence.add(backlog + " unpublished message(s)"
                + (backlog > 0 ? ", oldest " + format(roughly(seconds(oldest))) + " old" : "") + "; limit "
                + format(maxUnpublishedAge));
        if (backlog > 0 && seconds(oldest).compareTo(maxUnpublishedAge) > 0) {
            return new Check(
                    "outbox-unpublished",
                    title,
                    Verdict.FAIL,
                    "messages wait longer than " + format(maxUnpublishedAge) + " to be published",
                    evidence,
                    "Check that relays run and own every shard ('status'), that Kafka is reachable, and what holds the xmin horizon.");
        }
        return new Check("outbox-unpublished", title, Verdict.PASS, "the backlog is fresh", evidence, null);
    }

    /**
     * A btree index keeps the pages of the largest backlog it held: vacuum empties them for reuse but
     * gives none back, and every vacuum with dead rows to remove reads each index whole. After a
     * backlog of a few hundred thousand rows drains, the relay's vacuum (every {@code
     * vacuumAfterRows} deleted rows) reads thousands of empty index pages each time. Warns when the
     * indexes hold {@value #EXCESS_PAGES} pages more than the rows now in the table need.
     */
    Check indexSize(Connection c, Rows counted) throws SQLException {
        String title = INDEX_SIZE_TITLE;
        String table = schema + ".outbox_message";
        long rows = counted.rows();
        String sql = "select n.nspname || '.' || i.relname, pg_relation_size(i.oid),"
                + " current_setting('block_size')::bigint from pg_index x join pg_class i on i.oid = x.indexrelid"
                + " join pg_namespace n on n.oid = i.relnamespace where x.indrelid = ?::regclass order by i.relname";
        List<String> evidence = new ArrayList<>();
        long pages = 0;
        long needed = 0;
        try (PreparedStatement st = c.prepareStatement(sql)) {
            st.setString(1, table);
            try (ResultSet rs = st.executeQuery()) {
                while (rs.next()) {
                    long bytes = rs.getLong(2);
                    long indexPages = bytes / rs.getLong(3);
                    pages += indexPages;
                    needed += rows / ENTRIES_PER_PAGE + 2;
                    evidence.add(rs.getString(1) + ": " + indexPages + " pages (" + mebibytes(bytes) + ")");
                }
            }
        }
        evidence.add(rows + " row(s) in " + table + " need about " + needed + " index pages in all; the indexes hold "
                + pages);
        if (pages - needed > EXCESS_PAGES) {
            return new Check(
                    "outbox-index-size",
                    title,
                    Verdict.WARN,
                    "the indexes hold " + pages + " pages where the rows need about " + needed
                            + ": every vacuum reads them whole",
                    evidence,
                    "They keep the size of the largest backlog they held. Rebuild them online at a quiet hour, as the"
                            + " table's owner: REINDEX TABLE CONCURRENTLY " + table + " (appends, reads and the relay"
                            + " go on; it waits for the transactions older than itself; if it is interrupted, drop the"
                            + " invalid index it leaves, named *_ccnew). See benchmarks/RELAY.md, \"After a backlog\".");
        }
        return new Check(
                "outbox-index-size",
                title,
                Verdict.PASS,
                "the indexes hold " + pages + " pages for " + rows + " row(s)",
                evidence,
                null);
    }

    private static String mebibytes(long bytes) {
        return String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
    }
}
