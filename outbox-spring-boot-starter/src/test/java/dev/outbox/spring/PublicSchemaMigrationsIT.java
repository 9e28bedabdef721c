package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.core.Outbox;
import dev.outbox.testkit.TestDatabase;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import javax.sql.DataSource;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.flyway.autoconfigure.FlywayAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The outbox in the {@code public} schema beside the application's own Flyway migrations, on a fresh
 * database, with a bean of the application that needs the {@link Outbox} created before Spring Boot's
 * Flyway initializer (bean order follows the application's constructors). Spring Boot's Flyway refuses
 * a schema that holds tables but no history of its own, and the outbox migrations made {@code public}
 * such a schema when they ran first: the start failed. The outbox migrations now run after the
 * application's, whose tables they accept (they baseline a non-empty schema); in a schema of their own they
 * keep no order.
 */
class PublicSchemaMigrationsIT {
    static final TestDatabase DB = TestDatabase.create();

    @AfterAll
    static void drop() {
        DB.close();
    }

    @Test
    void theApplicationsFlywayAndTheOutboxMigrationsShareThePublicSchema() {
        new ApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(FlywayAutoConfiguration.class, OutboxAutoConfiguration.class))
                .withBean(DataSource.class, () -> DB.newDataSource(2))
                .withUserConfiguration(EarlyOutboxUser.class)
                .withPropertyValues("outbox.schema=public", "spring.flyway.locations=classpath:db/public-schema-app")
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(publicTables())
                            .contains(
                                    "app_orders",
                                    "flyway_schema_history",
                                    "outbox_message",
                                    "outbox_shard_lease",
                                    "outbox_schema_history");
                });
    }

    /**
     * In a schema of its own the outbox keeps no order with the application's Flyway migrations, so that a
     * migration of the application may use the outbox's tables when a bean needing the outbox is created first.
     */
    @Test
    void inASchemaOfItsOwnTheOutboxMayMigrateFirst() {
        try (TestDatabase own = TestDatabase.create()) {
            new ApplicationContextRunner()
                    .withConfiguration(
                            AutoConfigurations.of(FlywayAutoConfiguration.class, OutboxAutoConfiguration.class))
                    .withBean(DataSource.class, () -> own.newDataSource(2))
                    .withUserConfiguration(EarlyOutboxUser.class)
                    .withPropertyValues(
                            "outbox.schema=shop_outbox", "spring.flyway.locations=classpath:db/app-uses-outbox")
                    .run(context -> assertThat(context).hasNotFailed());
        }
    }

    private static List<String> publicTables() throws SQLException {
        List<String> tables = new ArrayList<>();
        try (Connection c = DB.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select tablename from pg_tables where schemaname = 'public'")) {
            while (rs.next()) {
                tables.add(rs.getString(1));
            }
        }
        return tables;
    }

    /** A service of the application that takes the outbox, created before the auto-configured beans. */
    @Configuration(proxyBeanMethods = false)
    static class EarlyOutboxUser {
        @Bean
        OrderService orderService(Outbox outbox) {
            return new OrderService(outbox);
        }
    }

    record OrderService(Outbox outbox) {}
}
