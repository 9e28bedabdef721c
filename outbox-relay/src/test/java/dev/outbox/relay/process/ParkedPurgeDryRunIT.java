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
 * are, not only among the oldest rows. {@code --all --yes} deletes only the count that dry run showed
 * ({@code --expect}): a message parked since stops it, and nothing is deleted.
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

            // --all --yes deletes only the count the dry run showed: a message parked since stops it
            int left = PARKED - 1;
            assertThat(String.join("\n", all.err())).contains("add --yes --expect=" + PARKED + " to confirm");
            var unbounded = cli(db, "parked", "purge", "--all", "--yes");
            assertThat(unbounded.code()).as("--all --yes without --expect").isEqualTo(2);
            assertThat(String.join("\n", unbounded.err())).contains("add --expect=<count>");
            try (Connection c = db.connect();
                    Statement st = c.createStatement()) {
                st.executeUpdate("insert into outbox.outbox_message (message_id, shard, topic, message_type,"
                        + " content_type, payload, parked_at, attempts, last_error) values (gen_random_uuid(), 0,"
                        + " 'dry-run', 'Test', 'text/plain', '\\x01', clock_timestamp(), 1, 'parked since')");
            }
            var stale = cli(db, "parked", "purge", "--all", "--yes", "--expect=" + left);
            assertThat(stale.code()).as("a count that is no longer right").isEqualTo(2);
            assertThat(String.join("\n", stale.err()))
                    .contains("Nothing purged: " + (left + 1) + " messages are parked now, not the " + left);
            assertThat(parked(db)).isEqualTo(left + 1);
            var confirmed = cli(db, "parked", "purge", "--all", "--yes", "--expect=" + (left + 1));
            assertThat(confirmed.code()).isZero();
            assertThat(confirmed.out()).contains("Purged " + (left + 1) + " parked message(s)");
            assertThat(parked(db)).isZero();
        }
    }

    private static long parked(TestDatabase db) throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs =
                        st.executeQuery("select count(*) from outbox.outbox_message where parked_at is not null")) {
            rs.next();
            return rs.getLong(1);
        }
    }
}
