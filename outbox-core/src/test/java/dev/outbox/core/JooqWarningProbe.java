package dev.outbox.core;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;
import java.util.Properties;
import java.util.function.Function;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.postgresql.Driver;
import org.slf4j.LoggerFactory;

/**
 * Run by {@code QuietJooqIT} in a class loader of its own, so that jOOQ's once-per-JVM version
 * check has not run yet: attaches a Logback {@link ListAppender} to the root logger, runs the first
 * jOOQ statement of that class loader, and returns every WARN or ERROR line logged meanwhile.
 * Arguments: JDBC URL, user, and {@code outbox} (build an {@link Outbox}, then run a query and append
 * one message, as an application does) or {@code plain} (the same query with no outbox built).
 */
public final class JooqWarningProbe implements Function<String[], List<String>> {

    @Override
    public List<String> apply(String[] args) {
        Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        ListAppender<ILoggingEvent> events = new ListAppender<>();
        events.start();
        root.addAppender(events);
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        // the driver of this class loader: DriverManager only hands out drivers its caller's loader sees
        try (Connection c = new Driver().connect(args[0], props)) {
            DSLContext dsl = DSL.using(c, SQLDialect.POSTGRES);
            if (args[2].equals("outbox")) {
                // as an application does: the outbox built at start, then its first statements
                Outbox outbox = Outbox.builder().build();
                dsl.fetchValue("select 1");
                dsl.transaction(tx -> outbox.append(
                        tx.dsl(),
                        OutboxMessage.of(
                                "quiet", "k", "Test", "text/plain", "hello".getBytes(StandardCharsets.UTF_8))));
            } else {
                dsl.fetchValue("select 1");
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        } finally {
            root.detachAppender(events);
        }
        return events.list.stream()
                .filter(e -> e.getLevel().isGreaterOrEqual(Level.WARN))
                .map(e -> e.getLevel() + " " + e.getLoggerName() + " - " + e.getFormattedMessage())
                .toList();
    }
}
