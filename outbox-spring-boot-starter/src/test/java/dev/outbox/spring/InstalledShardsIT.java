package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.core.Outbox;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestRole;
import java.sql.SQLException;
import javax.sql.DataSource;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;

/**
 * {@code outbox.shards} against the shard count the outbox was installed with, on PostgreSQL (the
 * template installs 64). G3 rests on every producer spreading keys over the installed count; a
 * mismatch used to start cleanly and then fail every append inside the business transactions, with
 * a message about {@code Outbox.builder()} that a Spring application does not call.
 */
class InstalledShardsIT {
    static final TestDatabase DB = TestDatabase.create();

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(OutboxAutoConfiguration.class))
            .withBean(DataSource.class, () -> DB.newDataSource(2));

    @AfterAll
    static void drop() {
        DB.close();
    }

    @Test
    void anotherShardCountThanTheInstalledOneFailsTheStartNamingTheProperty() {
        for (String migrations : new String[] {"true", "false"}) {
            runner.withPropertyValues("outbox.shards=16", "outbox.migrations.enabled=" + migrations)
                    .run(context -> {
                        assertThat(context).hasFailed();
                        assertThat(context.getStartupFailure())
                                .rootCause()
                                .hasMessageStartingWith("outbox.shards=16: the outbox in schema outbox was"
                                        + " installed with 64 shards")
                                .hasMessageEndingWith("set outbox.shards=64");
                    });
        }
    }

    @Test
    void theInstalledShardCountStarts() {
        runner.withPropertyValues("outbox.shards=64").run(context -> {
            assertThat(context).hasNotFailed();
            assertThat(context.getBean(Outbox.class).shardCount()).isEqualTo(64);
        });
    }

    /** A role that may append but not read the shard table: every append would fail, so the start does. */
    @Test
    void aRoleThatCannotReadTheShardTableFailsTheStartNamingTheGrant() throws SQLException {
        try (TestRole producer = TestRole.create(
                DB,
                "outbox_no_lease",
                "grant usage on schema outbox to %s",
                "grant insert on outbox.outbox_message to %s")) {
            new ApplicationContextRunner()
                    .withConfiguration(AutoConfigurations.of(OutboxAutoConfiguration.class))
                    .withBean(DataSource.class, () -> producer.dataSource(2))
                    .withPropertyValues("outbox.migrations.enabled=false")
                    .run(context -> {
                        assertThat(context).hasFailed();
                        assertThat(context.getStartupFailure())
                                .rootCause()
                                .hasMessageContaining("permission denied for table outbox_shard_lease");
                        assertThat(context.getStartupFailure())
                                .hasStackTraceContaining("SQLState 42501")
                                .hasStackTraceContaining("grant select on outbox.outbox_shard_lease");
                    });
        }
    }

    @Test
    void aSchemaNotInstalledYetIsNotCheckedWhenTheMigrationsAreOff() {
        runner.withPropertyValues("outbox.shards=16", "outbox.schema=not_installed", "outbox.migrations.enabled=false")
                .run(context -> assertThat(context).hasNotFailed());
    }
}
