package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.core.Outbox;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestRole;
import java.sql.SQLException;
import javax.sql.DataSource;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;

/**
 * {@code outbox.shards} against the shard count the outbox was installed with, on PostgreSQL (the
 * template installs 64). G3 rests on every producer spreading keys over the installed count; a
 * mismatch used to start cleanly and then fail every append inside the business transactions, with
 * a message about {@code Outbox.builder()} that a Spring application does not call.
 */
@ExtendWith(OutputCaptureExtension.class)
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

    /**
     * A role that cannot read the shard table (a service that only consumes, or only guards HTTP endpoints, may
     * lack the grant): the start goes on, and one WARN line names the grant an append would need.
     */
    @Test
    void aRoleThatCannotReadTheShardTableStartsWithAWarningNamingTheGrant(CapturedOutput output) throws SQLException {
        try (TestRole consumerOnly = TestRole.create(
                DB,
                "outbox_no_lease",
                "grant usage on schema outbox to %s",
                "grant insert on outbox.outbox_message to %s")) {
            new ApplicationContextRunner()
                    .withConfiguration(AutoConfigurations.of(OutboxAutoConfiguration.class))
                    .withBean(DataSource.class, () -> consumerOnly.dataSource(2))
                    .withPropertyValues("outbox.migrations.enabled=false")
                    .run(context -> assertThat(context).hasNotFailed());
        }
        assertThat(output.getAll())
                .contains("outbox.shards=64 not checked against the installed shard count")
                .contains("SQLState 42501")
                .contains("grant select on outbox.outbox_shard_lease");
    }

    @Test
    void aSchemaNotInstalledYetIsNotCheckedWhenTheMigrationsAreOff() {
        runner.withPropertyValues("outbox.shards=16", "outbox.schema=not_installed", "outbox.migrations.enabled=false")
                .run(context -> assertThat(context).hasNotFailed());
    }
}
