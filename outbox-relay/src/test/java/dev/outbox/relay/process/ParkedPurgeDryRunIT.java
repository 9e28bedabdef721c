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
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@code parked purge} without {@code --yes} tells what {@code --yes} would delete, however many rows
 * are parked: it counts them all and lists a bounded sample, and finds the given ids wherever they
 * are, not only among the oldest rows. {@code --all --yes} deletes only the messages that dry run showed
 * ({@code --expect=COUNT:FINGERPRINT}): a message parked since stops it, and nothing is deleted, also when
 * another was requeued meanwhile so that the count is the same (a check of the count alone deleted the
 * message parked since, unseen).
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
            assertThat(expectOf(all.err())).startsWith(PARKED + ":");

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

            // --all --yes deletes only the messages the dry run showed: one parked since stops it, also when
            // another left the parked ones meanwhile, so that the count alone is the same
            int left = PARKED - 1;
            var review = cli(db, "parked", "purge", "--all");
            String reviewed = expectOf(review.err());
            assertThat(reviewed).startsWith(left + ":");
            var unbounded = cli(db, "parked", "purge", "--all", "--yes");
            assertThat(unbounded.code()).as("--all --yes without --expect").isEqualTo(2);
            assertThat(String.join("\n", unbounded.err())).contains("add --expect=<COUNT:FINGERPRINT>");
            long parkedSince;
            try (Connection c = db.connect();
                    Statement st = c.createStatement()) {
                st.executeUpdate("update outbox.outbox_message set parked_at = null, attempts = 0, last_error = null"
                        + " where id = (select min(id) from outbox.outbox_message where parked_at is not null)");
                try (ResultSet rs = st.executeQuery("insert into outbox.outbox_message (message_id, shard, topic,"
                        + " message_type, content_type, payload, parked_at, attempts, last_error) values"
                        + " (gen_random_uuid(), 0, 'dry-run', 'Test', 'text/plain', '\\x01', clock_timestamp(), 1,"
                        + " 'parked since') returning id")) {
                    rs.next();
                    parkedSince = rs.getLong(1);
                }
            }
            assertThat(parked(db)).as("as many parked as the dry run showed").isEqualTo(left);
            var stale = cli(db, "parked", "purge", "--all", "--yes", "--expect=" + reviewed);
            assertThat(stale.code())
                    .as("the parked messages are no longer those reviewed")
                    .isEqualTo(2);
            assertThat(String.join("\n", stale.err()))
                    .contains("Nothing purged: the parked messages are not those the dry run showed");
            assertThat(parked(db)).isEqualTo(left);
            assertThat(parkedIds(db)).contains(parkedSince);

            String again = expectOf(cli(db, "parked", "purge", "--all").err());
            var confirmed = cli(db, "parked", "purge", "--all", "--yes", "--expect=" + again);
            assertThat(confirmed.code()).isZero();
            assertThat(confirmed.out()).contains("Purged " + left + " parked message(s)");
            assertThat(parked(db)).isZero();
        }
    }

    /** @return the --expect value the dry run's refusal asks for */
    private static String expectOf(List<String> err) {
        Matcher m = Pattern.compile("--expect=(\\S+) to confirm").matcher(String.join("\n", err));
        assertThat(m.find()).as("the dry run names --expect: %s", err).isTrue();
        return m.group(1);
    }

    private static List<Long> parkedIds(TestDatabase db) throws Exception {
        List<Long> ids = new ArrayList<>();
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select id from outbox.outbox_message where parked_at is not null")) {
            while (rs.next()) {
                ids.add(rs.getLong(1));
            }
        }
        return ids;
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
