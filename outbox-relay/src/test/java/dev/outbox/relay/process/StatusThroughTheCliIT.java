package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.testkit.TestDatabase;
import java.sql.Connection;
import java.sql.Statement;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The {@code status} command's text and JSON faces, run in this JVM against a real database. */
@Tag("integration")
class StatusThroughTheCliIT {

    /**
     * Rows on a shard that has no lease row (a writer with another shard count, on an install without V5's
     * shard-range constraint) are published by no relay: the text shows them on a line of their own with the
     * shard-count fix and counts them in the backlog; the JSON has them as a field of their own. Before, status
     * counted only the shards of the lease table and printed a backlog of 0.
     */
    @Test
    void rowsOnAShardWithoutALeaseRowAreShownWithTheFix() throws Exception {
        try (TestDatabase db = TestDatabase.create()) {
            try (Connection c = db.connect();
                    Statement st = c.createStatement()) {
                st.execute("alter table outbox.outbox_message drop constraint outbox_message_shard_range");
                st.execute("insert into outbox.outbox_message (message_id, shard, topic, message_key, message_type,"
                        + " content_type, created_at) values (gen_random_uuid(), 100, 'orders', 'k', 'T', 'text/plain',"
                        + " clock_timestamp() - interval '1 hour')");
            }

            PoisonThroughTheCliIT.Cli text = PoisonThroughTheCliIT.cli(db, "status");
            assertThat(text.code()).as("%s", text.err()).isZero();
            assertThat(text.out())
                    .containsPattern("(?m)^backlog\\s+1 message\\(s\\), oldest 1h")
                    .containsPattern("(?m)^no lease row\\s+1 message\\(s\\), oldest 1h, 0 parked, on shard\\(s\\) 100"
                            + " that have no lease row: no relay publishes them")
                    .containsPattern("(?m)^\\s+fix: A writer stored these rows with another shard count than this"
                            + " install's 64 .*Outbox\\.builder\\(\\)\\.shards\\(64\\)");

            PoisonThroughTheCliIT.Cli json = PoisonThroughTheCliIT.cli(db, "status", "--json");
            assertThat(json.code()).as("%s", json.err()).isZero();
            assertThat(json.out())
                    .contains("\"backlog\":1,")
                    .containsPattern("\"withoutLeaseRow\":\\{\"shards\":\\[\\{\"shard\":100,\"backlog\":1,")
                    .contains("\"fix\":\"A writer stored these rows with another shard count");
        }
    }
}
