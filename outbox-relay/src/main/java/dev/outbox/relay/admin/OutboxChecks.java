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

/**
 * The checks of the {@code outbox_message} table: {@code outbox-parked} (no parked rows wait for an
 * operator) and {@code outbox-unpublished} (the oldest unpublished row is young enough).
 */
final class OutboxChecks {
    private final String schema;
    private final Duration maxUnpublishedAge;

    OutboxChecks(DoctorSettings settings) {
        this.schema = settings.schema();
        this.maxUnpublishedAge = settings.maxUnpublishedAge();
    }

    Check parked(Connection c) throws SQLException {
        String title = "The outbox has no parked messages";
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

    Check unpublished(Connection c) throws SQLException {
        String title = "No outbox message stays unpublished for long";
        String sql = "select count(*), extract(epoch from clock_timestamp() - min(created_at))" + " from " + schema
                + ".outbox_message where parked_at is null";
        try (PreparedStatement st = c.prepareStatement(sql);
                ResultSet rs = st.executeQuery()) {
            rs.next();
            long backlog = rs.getLong(1);
            double oldest = rs.getDouble(2);
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
    }
}
