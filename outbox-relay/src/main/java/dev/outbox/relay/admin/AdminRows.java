package dev.outbox.relay.admin;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;

/** Column conversions shared by the statements behind {@link RelayAdmin}. */
final class AdminRows {
    private AdminRows() {}

    static Duration seconds(double s) {
        return Duration.ofNanos(Math.round(Math.max(0, s) * 1e9));
    }

    static Instant instant(ResultSet rs, String column) throws SQLException {
        OffsetDateTime t = rs.getObject(column, OffsetDateTime.class);
        return t == null ? null : t.toInstant();
    }

    static Instant instant(ResultSet rs, int column) throws SQLException {
        OffsetDateTime t = rs.getObject(column, OffsetDateTime.class);
        return t == null ? null : t.toInstant();
    }
}
