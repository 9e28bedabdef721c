package dev.outbox.migrations;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_SHARD_LEASE;
import static dev.outbox.migrations.jooq.Tables.PROCESSED_MESSAGE;
import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import java.util.UUID;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The test kit hands out a fresh database migrated with these scripts, one per test class. It lives here because
 * the kit finds the migrations on the test class path instead of depending on this module.
 */
@ExtendWith(RealServices.class)
class TestKitDatabaseIT {

    @Test
    void databaseIsFreshAndMigrated(TestDatabase db) {
        assertThat(db.name()).startsWith("outbox_it_");
        assertThat(db.dsl().fetchCount(OUTBOX_SHARD_LEASE)).isEqualTo(64);
        UUID id = UUID.randomUUID();
        db.dsl()
                .insertInto(PROCESSED_MESSAGE)
                .set(PROCESSED_MESSAGE.CONSUMER, "kit")
                .set(PROCESSED_MESSAGE.MESSAGE_ID, id)
                .execute();
        assertThat(db.dsl().fetchCount(PROCESSED_MESSAGE, PROCESSED_MESSAGE.MESSAGE_ID.eq(id)))
                .isOne();
    }

    /**
     * Under the {@code postgres-versions} build profile, the tests run on the embedded binaries that profile put on
     * the class path, not on a server found elsewhere.
     */
    @Test
    void runsOnTheVersionTheBuildAskedFor(TestDatabase db) {
        String expected = System.getProperty("outbox.test.pg.expected.version", "");
        String version = db.dsl().fetchValue(DSL.field("current_setting('server_version')", String.class));
        if (!expected.isEmpty()) {
            String majorMinor = expected.substring(0, expected.lastIndexOf('.'));
            assertThat(version).as("server version").startsWith(majorMinor);
        }
        assertThat(Integer.parseInt(
                        db.dsl().fetchValue(DSL.field("current_setting('server_version_num')", String.class))))
                .as("the oldest supported major, as README.md says")
                .isGreaterThanOrEqualTo(130000);
    }

    @Test
    void sameDatabaseWithinAClass(TestDatabase a, TestDatabase b) {
        assertThat(a).isSameAs(b);
    }

    @Test
    void anEmptyDatabaseHasNoOutboxTables() throws Exception {
        try (TestDatabase empty = TestDatabase.createEmpty();
                var c = empty.connect();
                var s = c.createStatement();
                var rs = s.executeQuery("select count(*) from pg_namespace where nspname = 'outbox'")) {
            rs.next();
            assertThat(rs.getInt(1)).isZero();
        }
    }
}
