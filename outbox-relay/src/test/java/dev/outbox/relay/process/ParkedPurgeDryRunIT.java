package dev.outbox.relay.process;

import static dev.outbox.relay.process.PoisonThroughTheCliIT.cli;
import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxMessage;
import dev.outbox.testkit.TestDatabase;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@code parked purge} without {@code --yes} tells what {@code --yes} would delete, however many rows
 * are parked: it counts them all and lists a bounded sample, and finds the given ids wherever they
 * are, not only among the oldest rows.
 */
@Tag("integration")
class ParkedPurgeDryRunIT {
    private static final int PARKED = 10_005;

    @Test
    void theDryRunCountsEveryParkedRowAndFindsIdsBeyondTheOldest10000() throws Exception {
        try (TestDatabase db = TestDatabase.create()) {
            Outbox outbox = Outbox.builder().build();
            List<OutboxMessage> messages = new ArrayList<>();
            for (int i = 0; i < PARKED; i++) {
                messages.add(OutboxMessage.of("dry-run", "k" + i, "Test", "text/plain", new byte[] {1}));
            }
            db.dsl().transaction(tx -> outbox.appendAll(tx.dsl(), messages));
            long newest;
            try (Connection c = db.connect();
                    Statement st = c.createStatement()) {
                st.executeUpdate("update outbox.outbox_message set parked_at = clock_timestamp(), attempts = 1,"
                        + " last_error = 'RecordTooLargeException: too big'");
                try (ResultSet rs = st.executeQuery("select max(id) from outbox.outbox_message")) {
                    rs.next();
                    newest = rs.getLong(1);
                }
            }

            var all = cli(db, "parked", "purge", "--all");
            assertThat(all.code()).as("refused without --yes").isEqualTo(2);
            assertThat(all.out())
                    .contains("Would purge " + PARKED + " parked message(s) for good; the " + AdminCommands.PURGE_SAMPLE
                            + " oldest:");
            assertThat(all.out().lines().filter(l -> l.contains("RecordTooLargeException")))
                    .hasSize(AdminCommands.PURGE_SAMPLE);

            var one = cli(db, "parked", "purge", "--id", String.valueOf(newest));
            assertThat(one.code()).as(one.out()).isEqualTo(2);
            assertThat(one.out()).contains("Would purge 1 parked message(s) for good:");
            assertThat(one.out().lines().filter(l -> l.contains("RecordTooLargeException")))
                    .singleElement()
                    .asString()
                    .contains(String.valueOf(newest));

            var purged = cli(db, "parked", "purge", "--id", String.valueOf(newest), "--yes");
            assertThat(purged.code()).isZero();
            assertThat(purged.out()).contains("Purged 1 parked message(s): " + newest);
        }
    }
}
