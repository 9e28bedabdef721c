package dev.outbox.spring;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javax.sql.DataSource;
import org.springframework.beans.factory.ListableBeanFactory;
import org.springframework.beans.factory.SmartInitializingSingleton;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.context.properties.bind.Bindable;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.context.annotation.Bean;
import org.springframework.core.env.Environment;

/**
 * Fails the start when a setting asks the starter for protection or publishing but the application
 * has no single {@code DataSource} (none, or several without a {@code @Primary} one): {@link
 * OutboxAutoConfiguration} then configures nothing, so the endpoints of {@code
 * outbox.idempotency.paths} would run without their Idempotency-Key filter and an {@code
 * outbox.relay.enabled=true} application would publish nothing, with no word in the log.
 */
@AutoConfiguration(after = OutboxAutoConfiguration.class)
public class OutboxDataSourceCheck {

    @Bean
    static SmartInitializingSingleton outboxDataSourceCheck(ListableBeanFactory beans, Environment environment) {
        return () -> {
            List<String> asked = new ArrayList<>();
            // a comma list or a YAML list, as IdempotencyPathsCondition reads it
            List<String> paths = Binder.get(environment)
                    .bind("outbox.idempotency.paths", Bindable.listOf(String.class))
                    .orElse(List.of());
            if (!paths.isEmpty()) {
                asked.add("outbox.idempotency.paths=" + String.join(",", paths));
            }
            if (environment.getProperty("outbox.relay.enabled", Boolean.class, false)) {
                asked.add("outbox.relay.enabled=true");
            }
            if (asked.isEmpty() || beans.getBeanProvider(DataSource.class).getIfUnique() != null) {
                return;
            }
            String[] names = beans.getBeanNamesForType(DataSource.class);
            throw new IllegalStateException(String.join(" and ", asked) + ", but the application has "
                    + (names.length == 0
                            ? "no DataSource bean"
                            : names.length + " DataSource beans and none is @Primary " + Arrays.toString(names))
                    + ", so the outbox starter configured nothing: no Idempotency-Key filter, no relay. Give the"
                    + " application one JDBC DataSource for PostgreSQL (spring.datasource.*), or mark the outbox's"
                    + " @Primary.");
        };
    }
}
