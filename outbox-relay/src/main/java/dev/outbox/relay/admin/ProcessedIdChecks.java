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
import java.util.Map;
import java.util.TreeMap;

/**
 * The {@code processed-expiry} check of the {@code processed_message} table: each consumer's
 * processed ids are purged after its retention.
 */
final class ProcessedIdChecks {
    static final String PROCESSED_EXPIRY_TITLE = "Processed message ids are purged after the consumer's retention";

    private final DoctorSettings settings;
    private final String schema;
    private final Duration purgeGrace;

    ProcessedIdChecks(DoctorSettings settings) {
        this.settings = settings;
        this.schema = settings.schema();
        this.purgeGrace = settings.purgeGrace();
    }

    /**
     * @return the age of each consumer's oldest processed id, by consumer name; empty when the table
     *     does not exist
     */
    Map<String, Duration> oldestProcessed(Connection c) throws SQLException {
        // distinct consumers by skipping along the primary key, then each one's oldest row
        String consumers = "with recursive c(consumer) as ("
                + " (select consumer from " + schema + ".processed_message order by consumer limit 1)"
                + " union all select (select p.consumer from " + schema
                + ".processed_message p where p.consumer > c.consumer"
                + "   order by p.consumer limit 1) from c where c.consumer is not null)"
                + " select c.consumer, extract(epoch from clock_timestamp() - (select min(p.processed_at) from "
                + schema
                + ".processed_message p where p.consumer = c.consumer)) as oldest_seconds from c where c.consumer is not null";
        Map<String, Duration> out = new TreeMap<>();
        if (!ConstraintCheck.tableExists(c, schema + ".processed_message")) {
            return out;
        }
        try (PreparedStatement st = c.prepareStatement(consumers);
                ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
                out.put(rs.getString(1), seconds(rs.getDouble(2)));
            }
        }
        return out;
    }

    Check processedExpiry(Map<String, Duration> oldest) {
        String title = PROCESSED_EXPIRY_TITLE;
        List<String> evidence = new ArrayList<>();
        List<String> late = new ArrayList<>();
        for (var e : oldest.entrySet()) {
            Duration retention = settings.retention(e.getKey());
            evidence.add("consumer " + e.getKey() + ": oldest id " + format(roughly(e.getValue())) + " old, retention "
                    + format(retention));
            if (e.getValue().compareTo(retention.plus(purgeGrace)) > 0) {
                late.add(e.getKey());
            }
        }
        if (!late.isEmpty()) {
            return new Check(
                    "processed-expiry",
                    title,
                    Verdict.FAIL,
                    "ids older than retention + " + format(purgeGrace) + " grace for consumer(s) "
                            + String.join(", ", late) + ": the purge is not running or not keeping up",
                    evidence,
                    "Keep IdempotentConsumer's scheduled purge on (purgeInterval, default 1 h) or call purgeProcessed(retention)"
                            + " yourself; give the doctor each consumer's retention (--consumer-retention NAME=DURATION).");
        }
        return new Check(
                "processed-expiry",
                title,
                Verdict.PASS,
                oldest.isEmpty() ? "no processed ids stored" : "every consumer's oldest id is within its retention",
                evidence,
                null);
    }
}
